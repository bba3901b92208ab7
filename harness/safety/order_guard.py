"""The order guard: recognises every form of an order message a client can
send, so the recording proxy can refuse it for ANY client (a team's own
code included) without patching that client.

The four messages that can change an account: placeOrder (3),
cancelOrder (4), exerciseOptions (21) and reqGlobalCancel (58). Each has
three wire forms (verified in ibapi-stable 10.50.2: client.py sendMsg /
sendMsgProtoBuf, comm.py make_msg / make_msg_proto, common.py
PROTOBUF_MSG_ID = 200 and getServerVersionForMessage):

* text (server version < 201): the id as ASCII digits and a NUL, ``b"3\\0..."``;
* binary id (>= 201, text payload): the id as a 4-byte big-endian int,
  ``b"\\0\\0\\0\\x03..."``;
* protobuf (placeOrder/cancelOrder/globalCancel from 203, exerciseOptions
  from 211): the id + 200 as a 4-byte int: 203, 204, 258, 221.

Why it ignores the negotiated version: a text payload always starts with an
ASCII digit and a binary id with a zero byte, so the shape alone tells the
forms apart (harness/protocol/wire_id.py, the one reader of a frame's id),
and a client that sends a form its version does not allow (buggy or
hostile) is still caught. The guard fails closed.

The proxies do not call this on raw chunks: their request guard
(stream_guard.py) frames the stream itself and adds the configuration
changes, non-canonical ids and the refusal sent to the client. This module
keeps the order message table and BlockedOrder, the evidence both share.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.messages import ORDER_MESSAGES, message_name
from ..protocol.wire_id import MSG_ID, is_binary_id, split_binary_id, unwire

ORDER_MESSAGE_IDS: dict[int, str] = {int(i): message_name(i, from_client=True) for i in ORDER_MESSAGES}

FORM_TEXT = "text"
FORM_BINARY = "binary-id"
FORM_PROTOBUF = "protobuf"
_MAX_TEXT_ID_DIGITS = 10
KIND_ORDER = "order"
KIND_CONFIG = "config"
KIND_AMBIGUOUS = "ambiguous"  # a frame whose message id is not in the form real clients send


@dataclass(frozen=True)
class BlockedOrder:
    """An order message the guard refused, and why the user sees it refused."""

    name: str  # placeOrder, cancelOrder, exerciseOptions, reqGlobalCancel
    form: str  # text | binary-id | protobuf
    wire_id: int  # the id as sent (203 for a protobuf placeOrder)
    kind: str = KIND_ORDER  # order | config | ambiguous (harness/safety/stream_guard.py)
    detail: str = ""  # e.g. the non-canonical id text that was read as this message

    @property
    def reason(self) -> str:
        extra = f", {self.detail}" if self.detail else ""
        if self.kind == KIND_CONFIG:
            return (f"CONFIG CHANGE BLOCKED: {self.name} ({self.form} form, message id {self.wire_id}{extra}) "
                    "was not forwarded: runs do not change Gateway settings unless allowed "
                    "(--allow-config-changes); the harness closed this connection")
        if self.kind == KIND_AMBIGUOUS:
            return (f"REQUEST BLOCKED: a frame with an unreadable message id ({self.detail}) was not forwarded: "
                    "the guard cannot rule out an order; the harness closed this connection")
        return (f"ORDER BLOCKED: {self.name} ({self.form} form, message id {self.wire_id}{extra}) was not forwarded: "
                "live runs are read-only; the harness closed this connection")


def classify_order(payload: bytes) -> BlockedOrder | None:
    """The order message a client->Gateway frame payload (after the length
    prefix) carries, or None for anything else (including the handshake)."""
    if not payload:
        return None
    if is_binary_id(payload):  # binary 4-byte id: text payload (>= 201) or protobuf
        if len(payload) < MSG_ID.size:
            return None
        wire_id = split_binary_id(payload)[0]
        msg_id, is_protobuf = unwire(wire_id)
        if msg_id in ORDER_MESSAGE_IDS:
            return BlockedOrder(ORDER_MESSAGE_IDS[msg_id], FORM_PROTOBUF if is_protobuf else FORM_BINARY, wire_id)
        return None
    head, sep, _ = payload[: _MAX_TEXT_ID_DIGITS + 1].partition(b"\0")
    if sep and head.isdigit() and int(head) in ORDER_MESSAGE_IDS:
        return BlockedOrder(ORDER_MESSAGE_IDS[int(head)], FORM_TEXT, int(head))
    return None


class OrderGuard:
    """A frame -> allow/deny callable for the proxy, keeping what it refused.

    Call it with each client->Gateway frame payload: it returns None to
    forward the frame, or the refusal text; the proxy then drops the frame
    and closes the connection. ``blocked`` is the evidence.
    """

    def __init__(self) -> None:
        self.blocked: list[BlockedOrder] = []

    def __call__(self, payload: bytes) -> str | None:
        order = classify_order(payload)
        if order is None:
            return None
        self.blocked.append(order)
        return order.reason


__all__ = ["FORM_BINARY", "KIND_AMBIGUOUS", "KIND_CONFIG", "KIND_ORDER", "FORM_PROTOBUF", "FORM_TEXT", "ORDER_MESSAGE_IDS", "BlockedOrder", "OrderGuard",
           "classify_order"]
