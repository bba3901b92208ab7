"""Which wire form a message takes at a negotiated server version.

Three forms exist (the official client's `comm.make_msg`/`make_msg_proto`,
`EClient.useProtoBuf` and `common.getServerVersionForMessage`, ibapi 10.50):

- TEXT: `"<id>\\0" fields...`, the whole protocol up to server version 200;
- TEXT_BINARY_ID: from 201 on, a text message keeps its NUL fields but its
  id becomes 4 big-endian bytes;
- PROTOBUF: the 4-byte id is message id + 200 and the body is protobuf.

Client -> server the official client decides per request family, by the
gates of ibapi 10.50's `common.getServerVersionForMessage` (REQUEST_GATES
below, verified by tests/protocol/test_proto_schema.py against the installed client).

Server -> client a Gateway decides per message, and the official client
accepts either form at any version >= 201. What a real Gateway sends in
201..212 is not confirmed, so the mock's choice is a named ReplyModel a
profile selects, never an accident:

- "request-family" (default): a reply is protobuf once the negotiated
  version reaches the gate of the request it answers (the model rust-ibapi's
  live-Gateway suite documents); nextValidId/managedAccounts sent after
  startApi belong to startApi's family (213); errors and notices are
  protobuf from 201. Evidence: a real TWS at 205 (scmhub/ibsync#11, S8 in
  real-captures.md) sent nextValidId and managedAccounts as text and the
  2104 farm notice as protobuf.
- "rest3-switch": text with binary ids for everything below 213, protobuf
  for every message with a schema from 213 (rust-ibapi's "at
  PROTOBUF_REST_MESSAGES_3 every message with a proto decoder arrives
  proto-framed", applied as a single switch).
- "binary-id-text": never protobuf; text with binary ids from 201. Not a
  claim about any Gateway: it checks that a client copes with the text form.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..core.errors import HarnessError
from .market import PROTO_GATES, PROTO_REPLIES, PROTO_REQUESTS
from .messages import In, Out
from .proto_messages import REPLIES, REQUESTS
from .versions import PROTOBUF

INF = 10**9  # "never"


class Form(str, Enum):
    TEXT = "text"
    TEXT_BINARY_ID = "text-binary-id"
    PROTOBUF = "protobuf"


# ibapi 10.50 common.getServerVersionForMessage, for the requests the
# harness knows (server_versions.MIN_SERVER_VER_PROTOBUF_*).
PROTOBUF_PLACE_ORDER = 203
PROTOBUF_COMPLETED_ORDER = 204
PROTOBUF_MARKET_DATA = 206
PROTOBUF_ACCOUNTS_POSITIONS = 207
PROTOBUF_REST_MESSAGES_1 = 211
PROTOBUF_REST_MESSAGES_3 = 213

REQUEST_GATES: dict[int, int] = {
    Out.REQ_EXECUTIONS: PROTOBUF,
    Out.PLACE_ORDER: PROTOBUF_PLACE_ORDER, Out.CANCEL_ORDER: PROTOBUF_PLACE_ORDER,
    Out.REQ_GLOBAL_CANCEL: PROTOBUF_PLACE_ORDER,
    Out.REQ_OPEN_ORDERS: PROTOBUF_COMPLETED_ORDER, Out.REQ_AUTO_OPEN_ORDERS: PROTOBUF_COMPLETED_ORDER,
    Out.REQ_ALL_OPEN_ORDERS: PROTOBUF_COMPLETED_ORDER, Out.REQ_COMPLETED_ORDERS: PROTOBUF_COMPLETED_ORDER,
    Out.REQ_MARKET_DATA_TYPE: PROTOBUF_MARKET_DATA, 1: PROTOBUF_MARKET_DATA, 2: PROTOBUF_MARKET_DATA,
    Out.REQ_ACCT_DATA: PROTOBUF_ACCOUNTS_POSITIONS, Out.REQ_MANAGED_ACCTS: PROTOBUF_ACCOUNTS_POSITIONS,
    Out.REQ_POSITIONS: PROTOBUF_ACCOUNTS_POSITIONS, Out.CANCEL_POSITIONS: PROTOBUF_ACCOUNTS_POSITIONS,
    Out.REQ_ACCOUNT_SUMMARY: PROTOBUF_ACCOUNTS_POSITIONS, Out.CANCEL_ACCOUNT_SUMMARY: PROTOBUF_ACCOUNTS_POSITIONS,
    74: PROTOBUF_ACCOUNTS_POSITIONS, 75: PROTOBUF_ACCOUNTS_POSITIONS,  # positions multi
    Out.REQ_ACCOUNT_UPDATES_MULTI: PROTOBUF_ACCOUNTS_POSITIONS,
    Out.CANCEL_ACCOUNT_UPDATES_MULTI: PROTOBUF_ACCOUNTS_POSITIONS,
    Out.EXERCISE_OPTIONS: PROTOBUF_REST_MESSAGES_1,
    Out.START_API: PROTOBUF_REST_MESSAGES_3, Out.REQ_IDS: PROTOBUF_REST_MESSAGES_3,
    Out.REQ_CURRENT_TIME: PROTOBUF_REST_MESSAGES_3, Out.REQ_CURRENT_TIME_IN_MILLIS: PROTOBUF_REST_MESSAGES_3,
}


def request_form(server_version: int, out_id: int) -> Form:
    """The form the official client uses for a request at this version; the
    raw client sends the same, so its frames match ibapi's byte for byte."""
    if server_version < PROTOBUF:
        return Form.TEXT
    if server_version >= REQUEST_GATES.get(out_id, INF) and out_id in REQUESTS:
        return Form.PROTOBUF
    if server_version >= PROTO_GATES.get(out_id, INF) and out_id in PROTO_REQUESTS:
        return Form.PROTOBUF  # requests beyond the account flow (market.py)
    return Form.TEXT_BINARY_ID


@dataclass(frozen=True)
class ReplyModel:
    """A named, documented assumption about how a Gateway in 201..226 picks
    the form of each message it sends (see the module docstring)."""

    name: str
    error_gate: int  # errors and notices: protobuf from this version
    uniform_gate: int | None  # None: follow the originating request's family gate
    description: str

    def reply_form(self, server_version: int, msg_id: int, origin: int | None) -> Form:
        """msg_id: the server message (messages.In); origin: the request it
        answers (messages.Out; START_API for the start-up messages), None
        for unsolicited messages."""
        if server_version < PROTOBUF:
            return Form.TEXT
        if msg_id not in REPLIES and msg_id not in PROTO_REPLIES:
            return Form.TEXT_BINARY_ID  # no schema: stays text (e.g. TICK_EFP)
        if msg_id == In.ERR_MSG or origin is None:
            gate = self.error_gate
        elif self.uniform_gate is not None:
            gate = self.uniform_gate
        else:
            gate = REQUEST_GATES.get(origin, PROTO_GATES.get(origin, INF))
        return Form.PROTOBUF if server_version >= gate else Form.TEXT_BINARY_ID


REPLY_MODELS: dict[str, ReplyModel] = {m.name: m for m in (
    ReplyModel("request-family", PROTOBUF, None,
               "replies protobuf from their request family's gate; start-up messages with startApi (213); "
               "errors from 201 (real TWS at 205 sent protobuf 2104 after text nextValidId/managedAccounts)"),
    ReplyModel("rest3-switch", PROTOBUF_REST_MESSAGES_3, PROTOBUF_REST_MESSAGES_3,
               "text with binary ids below 213, every message with a schema protobuf from 213"),
    ReplyModel("binary-id-text", INF, INF, "never protobuf: text with binary ids from 201 (a client check)"),
)}
DEFAULT_REPLY_MODEL = "request-family"


class UnknownReplyModelError(HarnessError, ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown reply model {name!r}; valid: {', '.join(REPLY_MODELS)}")


def get_reply_model(name: str) -> ReplyModel:
    try:
        return REPLY_MODELS[name]
    except KeyError:
        raise UnknownReplyModelError(name) from None
