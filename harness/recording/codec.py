"""One recorded frame: decoded from the wire, pseudonymised, and encoded back.

Why its own module: the recorder, the replayer and the diff all need the
same three views of a frame (its named fields, where a request id or a
timestamp sits, and its bytes at a server version), in both eras. Text
frames keep their fields (id first); protobuf frames keep their decoded
values (`pb`), which encode back byte for byte when the type is known
here, or their body (`body`, base64) when it is not.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from ..core.errors import HarnessError
from ..core.redact import Pseudonymizer
from ..protocol import protobuf
from ..protocol.era import Form
from ..protocol.frame import DOWN, UP, FrameRecord
from ..protocol.framing import encode_frame, split_fields
from ..protocol.messages import In, Message, decode_reply, decode_request, message_name
from ..protocol.proto_bridge import proto_message
from ..protocol.proto_messages import REPLIES, REQUESTS
from ..protocol.versions import (
    ADVANCED_ORDER_REJECT,
    ERROR_TIME,
    PENDING_PRICE_REVISION,
    PROTOBUF,
    SUBMITTER,
)
from ..protocol.wire import decode_client_frame, decode_server_frame, encode_in_form
from ..protocol.wire_id import binary_id, split_binary_id

HELLO = "hello"
UNDECODABLE = "undecodable"

# Where a named value sits inside a protobuf message (first path present wins).
PB_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "req_id": (("reqId",), ("id",)),
    "time": (("currentTime",),),
    "time_ms": (("currentTimeInMillis",),),
    "error_time": (("errorTime",),),
    "order_id": (("execution", "orderId"), ("orderId",)),
    "perm_id": (("execution", "permId"), ("permId",)),
    "exec_id": (("execution", "execId"), ("execId",)),
    "client_id": (("execution", "clientId"),),
    "code": (("errorCode",),),
    "message": (("errorMsg",),),
}
# execDetails' text fields after "price" (messages.py names the first 20).
_EXEC_PERM_ID = 21


@dataclass
class FrameLine(FrameRecord):
    """One frame of a recording (a `"type": "frame"` line): the one
    transcript record (protocol/frame.py; conn_id, t, direction, name,
    msg_id, form, fields, note), plus the protobuf values it replays from.
    The file keeps its own keys (conn, dir, id; FORMAT.md)."""

    pb: dict[str, Any] | None = None  # protobuf values (a type this codec knows)
    body: str | None = None  # base64 protobuf body (a type it does not know)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "frame", "conn": self.conn_id, "t": self.t, "dir": self.direction,
                               "name": self.name, "id": self.msg_id, "form": self.form, "fields": self.fields}
        if self.pb is not None:
            out["pb"] = self.pb
        if self.body is not None:
            out["body"] = self.body
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameLine:
        return cls(int(data["conn"]), float(data["t"]), str(data["dir"]), str(data["name"]),
                   None if data.get("id") is None else int(data["id"]), str(data["form"]),
                   [str(f) for f in data.get("fields", [])], str(data.get("note", "")), pb=data.get("pb"),
                   body=data.get("body"))

    @property
    def is_message(self) -> bool:
        return self.form not in (HELLO, UNDECODABLE)


# ---------------------------------------------------------------- decode


def decode(conn: int, t: float, direction: str, server_version: int | None, payload: bytes) -> FrameLine:
    """A frame after the handshake, in any form, as a recording line."""
    from_client = direction == UP
    version = server_version or 0
    if version < PROTOBUF:
        fields = split_fields(payload)
        msg = decode_request(fields) if from_client else decode_reply(version, fields)
        return FrameLine(conn, t, direction, msg.name, msg.msg_id, Form.TEXT.value, fields)
    msg, form, shown = (decode_client_frame if from_client else decode_server_frame)(version, payload)
    line = FrameLine(conn, t, direction, msg.name, msg.msg_id, form.value, list(shown))
    if form is Form.PROTOBUF:
        body = split_binary_id(payload)[1]
        mtype = (REQUESTS if from_client else REPLIES).get(msg.msg_id)
        if mtype is not None:
            line.pb = protobuf.decode(mtype, body)
        else:
            line.body = base64.b64encode(body).decode("ascii")
    return line


def named(line: FrameLine, server_version: int) -> Message:
    """The frame's named fields (messages.py names, both eras)."""
    from_client = line.direction == UP
    if line.form == Form.PROTOBUF.value:
        if line.pb is None or line.msg_id is None:
            return Message(line.msg_id or 0, line.name, {}, list(line.fields))
        return proto_message(line.msg_id, line.pb, from_client=from_client)
    if not line.fields:
        return Message(line.msg_id or 0, line.name, {}, [])
    return decode_request(line.fields) if from_client else decode_reply(server_version, line.fields)


def _text_index(line: FrameLine, name: str, server_version: int) -> int | None:
    if line.msg_id == In.EXECUTION_DATA and line.direction == DOWN and name == "perm_id":
        return _EXEC_PERM_ID if len(line.fields) > _EXEC_PERM_ID else None
    keys = [k for k in named(line, server_version).fields if k != "extra"]
    return keys.index(name) + 1 if name in keys else None


def _pb_slot(pb: dict[str, Any], name: str) -> tuple[dict[str, Any], str] | None:
    for path in PB_PATHS.get(name, ()):
        node: Any = pb
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            return node, path[-1]
    return None


def get_value(line: FrameLine, name: str, server_version: int) -> str | None:
    """A named value as text, or None when the frame has no such field."""
    if line.form == Form.PROTOBUF.value:
        slot = _pb_slot(line.pb or {}, name)
        if slot is None:
            return None
        value = slot[0][slot[1]]
        return ("1" if value else "0") if isinstance(value, bool) else str(value)
    index = _text_index(line, name, server_version)
    return line.fields[index] if index is not None and index < len(line.fields) else None


def set_value(line: FrameLine, name: str, value: str, server_version: int) -> bool:
    """Replace a named value in place (typed for protobuf); False when absent."""
    if line.form == Form.PROTOBUF.value:
        slot = _pb_slot(line.pb or {}, name)
        if slot is None:
            return False
        node, key = slot
        old = node[key]
        node[key] = type(old)(float(value)) if isinstance(old, (int, float)) and not isinstance(old, bool) else value
        return True
    index = _text_index(line, name, server_version)
    if index is None or index >= len(line.fields):
        return False
    line.fields[index] = value
    return True


# ---------------------------------------------------------------- redact


def pseudonymise(line: FrameLine, pseudo: Pseudonymizer, server_version: int) -> None:
    """Replace identifying values in place: accounts (managedAccounts first
    teaches the table), order/perm/execution ids, named texts, credentials."""
    if line.direction == DOWN and line.msg_id == In.MANAGED_ACCTS and line.is_message:
        pseudo.learn_accounts(str(named(line, server_version).fields.get("accounts", "")).split(","))
    if line.is_message and line.direction == DOWN:
        for key in _ID_FIELDS.get(line.msg_id or 0, ()):
            value = get_value(line, key, server_version)
            positional = value is None
            if positional:
                value = _positional(line, key)
            if value is None:
                continue
            fake = pseudo.exec_id(value) if key == "exec_id" else pseudo.number(key[:-3], value)
            if positional:
                _set_positional(line, key, fake)
            else:
                set_value(line, key, fake, server_version)
    line.fields = [pseudo.text(f) for f in line.fields]
    if line.pb is not None:
        line.pb = pseudo.walk(line.pb)
    if line.body is not None:
        line.body = _pseudonymise_bytes(line.body, pseudo)
    line.note = pseudo.text(line.note)


# The order-tied ids each Gateway message carries (pseudonymised).
_ID_FIELDS: dict[int, tuple[str, ...]] = {In.EXECUTION_DATA: ("order_id", "perm_id", "exec_id"), 59: ("exec_id",),
                                          In.ORDER_STATUS: ("order_id", "perm_id"), In.OPEN_ORDER: ("order_id",)}
# Text positions in messages whose layouts messages.py does not name
# (servers >= 145: no version field): orderStatus [3, orderId, status,
# filled, remaining, avgFillPrice, permId, ...], openOrder [5, orderId, ...],
# commissionReport [59, version, execId, ...].
_POSITIONS: dict[tuple[int, str], int] = {(In.ORDER_STATUS, "order_id"): 1, (In.ORDER_STATUS, "perm_id"): 6,
                                          (In.OPEN_ORDER, "order_id"): 1, (59, "exec_id"): 2}


def _positional(line: FrameLine, key: str) -> str | None:
    index = _POSITIONS.get((line.msg_id or 0, key))
    return line.fields[index] if index is not None and index < len(line.fields) else None


def _set_positional(line: FrameLine, key: str, value: str) -> None:
    index = _POSITIONS.get((line.msg_id or 0, key))
    if index is not None and index < len(line.fields):
        line.fields[index] = value


def _pseudonymise_bytes(body_b64: str, pseudo: Pseudonymizer) -> str:
    """A protobuf body this codec has no schema for: account ids replaced by
    their same-length fakes in the bytes, so every length prefix stays valid."""
    text = base64.b64decode(body_b64).decode("latin-1")
    replaced = pseudo.text(text)
    if len(replaced) != len(text):  # a replacement changed a length: keep nothing rather than leak
        return base64.b64encode(b"").decode("ascii")
    return base64.b64encode(replaced.encode("latin-1")).decode("ascii")


# ---------------------------------------------------------------- encode


class NotReplayable(HarnessError):
    """A recorded frame that cannot be sent at the live server version."""


def encode(line: FrameLine, server_version: int) -> tuple[bytes, list[str], str]:
    """A recorded Gateway frame -> (framed bytes, transcript fields, form) at
    the live server version (the recorded one, or a lower text version)."""
    if line.form == Form.PROTOBUF.value:
        if server_version < PROTOBUF:
            raise NotReplayable(f"{line.name} was recorded as protobuf; the client negotiated {server_version}")
        if line.msg_id is None:
            raise NotReplayable(f"{line.name}: no message id")
        if line.pb is not None:
            mtype = (REQUESTS if line.direction == UP else REPLIES)[line.msg_id]
            body = protobuf.encode(mtype, line.pb)
            shown = protobuf.describe(line.pb)
        else:
            body = base64.b64decode(line.body or "")
            shown = list(line.fields)
        return encode_frame(binary_id(line.msg_id, protobuf=True) + body), shown, Form.PROTOBUF.value
    if not line.is_message or not line.fields:
        raise NotReplayable(f"{line.name}: not a message frame")
    form = Form(line.form)
    if server_version < PROTOBUF:
        form = Form.TEXT
    elif form is Form.TEXT:
        form = Form.TEXT_BINARY_ID
    data, shown = encode_in_form(form, server_version, list(line.fields), from_client=line.direction == UP)
    return data, shown, form.value


def downgrade(line: FrameLine, recorded: int, live: int) -> None:
    """Text layouts that changed between the recorded and a lower live
    version, adjusted in place: the error message (166, 194) and execDetails'
    trailing fields (178, 198). Other layouts the harness speaks are equal."""
    if live >= recorded or line.form == Form.PROTOBUF.value or line.direction != DOWN:
        return
    f = line.fields
    if line.msg_id == In.ERR_MSG and recorded >= ERROR_TIME > live and len(f) >= 4:
        req_id, code, text = f[1], f[2], f[3]
        reject = f[4] if len(f) > 4 else ""
        line.fields = ["4", "2", req_id, code, text] + ([reject] if live >= ADVANCED_ORDER_REJECT else [])
    elif line.msg_id == In.ERR_MSG and recorded >= ADVANCED_ORDER_REJECT > live and len(f) == 6:
        line.fields = f[:5]
    elif line.msg_id == In.EXECUTION_DATA:
        drop = (recorded >= SUBMITTER > live) + (recorded >= PENDING_PRICE_REVISION > live)
        if drop:
            line.fields = f[:-drop]


def message_label(line: FrameLine) -> str:
    """The name a diff shows: direction arrow + message name."""
    return ("-> " if line.direction == UP else "<- ") + line.name


__all__ = [
    "DOWN",
    "UP",
    "FrameLine",
    "NotReplayable",
    "decode",
    "downgrade",
    "encode",
    "get_value",
    "message_label",
    "message_name",
    "named",
    "pseudonymise",
    "set_value",
]
