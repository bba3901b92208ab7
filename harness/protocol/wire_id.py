"""Which message a frame is: the one decoder (and encoder) of its wire id.

Why one module: the mock's codec and transcript, the proxy's decoder, the
request guards and the recording each need "which message is this frame"
before anything else, and each used to read it itself (issue 19); a fix to
one (the protobuf offset, a short binary id) missed the others.

The three forms a message id takes on the wire (ibapi-stable 10.50 comm.py
make_msg / make_msg_proto, common.PROTOBUF_MSG_ID):

* text (server version <= 200): decimal digits and a NUL, ``b"3\\0..."``
  (framing.message_id reads it; the guards' shape test below tells it apart);
* binary id (>= 201, text fields follow): a 4-byte big-endian int;
* protobuf: the same 4 bytes carrying message id + PROTOBUF_MSG_ID (200).

A text payload always starts with an ASCII digit and a binary id below
2**24 with a zero byte, so the shape alone tells the forms apart
(is_binary_id); the guards rely on that, whatever version was negotiated.
"""

from __future__ import annotations

import struct

from ..core.constants import PROTOBUF_MSG_ID
from .errors import ProtocolError

MSG_ID = struct.Struct(">I")  # the 4-byte binary id (server version >= 201)


def unwire(wire_id: int) -> tuple[int, bool]:
    """A binary wire id -> (message id, is protobuf): above 200 it is a
    protobuf message's id + 200."""
    if wire_id > PROTOBUF_MSG_ID:
        return wire_id - PROTOBUF_MSG_ID, True
    return wire_id, False


def binary_id(msg_id: int, *, protobuf: bool = False) -> bytes:
    """The 4 bytes that start a payload from server version 201."""
    return MSG_ID.pack(msg_id + PROTOBUF_MSG_ID if protobuf else msg_id)


def is_binary_id(payload: bytes) -> bool:
    """The payload starts with a binary id (a zero first byte), not text digits."""
    return payload[:1] == b"\0"


def split_binary_id(payload: bytes) -> tuple[int, bytes]:
    """A payload from server version 201 -> (wire id as sent, the bytes after it)."""
    if len(payload) < MSG_ID.size:
        raise ProtocolError(f"frame of {len(payload)} bytes has no 4-byte message id",
                            "from server version 201 every frame starts with a binary id")
    return MSG_ID.unpack_from(payload)[0], payload[MSG_ID.size:]


__all__ = ["MSG_ID", "PROTOBUF_MSG_ID", "binary_id", "is_binary_id", "split_binary_id", "unwire"]
