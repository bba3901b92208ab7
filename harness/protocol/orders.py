"""The id an order message is about, so a refusal can carry it.

Why: a real Gateway answers a refused placeOrder with error(orderId, 201,
...) (or 321 under the Read-Only API setting), and clients key their order
bookkeeping on that id: ib_async marks the Trade Cancelled and logs the
reason, ibapi's EWrapper.error gets the id the program passed. A refusal
with id -1 leaves a client's order pending forever.

Where the id sits (ibapi-stable 10.50.2 client.py):
* placeOrder: after the id, a VERSION field only below server version 145
  (MIN_SERVER_VER_ORDER_CONTAINER), then orderId;
* cancelOrder: VERSION only below 192 (MIN_SERVER_VER_CME_TAGGING_FIELDS), then orderId;
* exerciseOptions: VERSION, then reqId (always);
* reqGlobalCancel: no id (-1, as the Gateway reports it);
* the protobuf forms (PlaceOrderRequest, CancelOrderRequest,
  ExerciseOptionsRequest): orderId is field 1, an int32.
Standard library only, like the rest of harness/protocol.
"""

from __future__ import annotations

from .errors import ProtocolError
from .framing import split_fields
from .messages import Out
from .protobuf import decode_varint
from .wire_id import MSG_ID, is_binary_id, split_binary_id, unwire

NO_ID = -1
ORDER_CONTAINER = 145  # placeOrder drops its VERSION field
CME_TAGGING_FIELDS = 192  # cancelOrder drops its VERSION field
_FIELD_1_VARINT = 0x08  # protobuf key: field number 1, wire type varint

# message id -> (index of the id among the fields after the message id, below / from the version)
_TEXT_POSITION: dict[int, tuple[int, int, int]] = {
    Out.PLACE_ORDER: (ORDER_CONTAINER, 1, 0),
    Out.CANCEL_ORDER: (CME_TAGGING_FIELDS, 1, 0),
    Out.EXERCISE_OPTIONS: (0, 1, 1),
}


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def order_id_of(server_version: int, payload: bytes) -> int:
    """The order (or request) id in an order message's payload, in any of
    its three forms; NO_ID when the message carries none or is malformed
    (a refusal must still go out)."""
    try:
        if is_binary_id(payload) and len(payload) >= MSG_ID.size:  # binary id: text fields, or protobuf
            wire_id, body = split_binary_id(payload)
            msg_id, is_protobuf = unwire(wire_id)
            if is_protobuf:
                if msg_id == Out.REQ_GLOBAL_CANCEL or body[:1] != bytes([_FIELD_1_VARINT]):
                    return NO_ID
                return _int32(decode_varint(body, 1)[0])
            rest = split_fields(body) if body else []
        else:
            fields = split_fields(payload)
            msg_id, rest = int(fields[0]), fields[1:]
        position = _TEXT_POSITION.get(msg_id)
        if position is None:
            return NO_ID
        threshold, below, from_version = position
        index = below if server_version < threshold else from_version
        return int(rest[index]) if index < len(rest) and rest[index].lstrip("-").isdigit() else NO_ID
    except (ProtocolError, ValueError, IndexError):
        return NO_ID


__all__ = ["NO_ID", "order_id_of"]
