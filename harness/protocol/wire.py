"""Frames after the handshake, in both eras: one encode and one decode per direction.

Up to server version 200 a payload is NUL-terminated text with a decimal id
(framing.py). From 201 every payload starts with a 4-byte big-endian id; an
id above 200 means protobuf (id - 200 is the message id), anything else is
the old text fields behind a binary id. Which form a message takes is
era.py's decision; this module only writes and reads the bytes, so the text
era stays byte-identical to what framing.py always produced.

Each function also returns the fields to show in a transcript: the text
fields (id first) for text forms, `name=value` strings for protobuf.
"""

from __future__ import annotations

from . import protobuf
from .era import Form, request_form
from .errors import ProtocolError
from .framing import Field, encode_fields, encode_frame, encode_message, field_text, split_fields
from .market import PROTO_REPLIES, PROTO_REQUESTS
from .messages import Message, decode_reply, decode_request
from .proto_bridge import proto_message, reply_to_proto, request_to_proto
from .proto_messages import REPLIES, REQUESTS
from .versions import PROTOBUF
from .wire_id import binary_id, split_binary_id, unwire


def _binary_id_text(fields: list[Field]) -> bytes:
    msg_id = int(field_text(fields[0]))
    return encode_frame(binary_id(msg_id) + encode_fields(fields[1:]))


def encode_in_form(form: Form, server_version: int, fields: list[Field], *,
                   from_client: bool) -> tuple[bytes, list[str]]:
    """One message (text fields, id first, as messages.py builds it) in the
    given form -> (framed bytes, transcript fields)."""
    if form is Form.TEXT:
        return encode_message(fields), [field_text(f) for f in fields]
    if form is Form.TEXT_BINARY_ID:
        return _binary_id_text(fields), [field_text(f) for f in fields]
    msg_id, mtype, values = request_to_proto(fields) if from_client else reply_to_proto(server_version, fields)
    body = protobuf.encode(mtype, values)
    return encode_frame(binary_id(msg_id, protobuf=True) + body), protobuf.describe(values)


def encode_request(server_version: int, fields: list[Field]) -> tuple[bytes, list[str], Form]:
    """A client request in the form the official client uses at this version."""
    form = request_form(server_version, int(field_text(fields[0])))
    data, shown = encode_in_form(form, server_version, fields, from_client=True)
    return data, shown, form


def _decode(server_version: int, payload: bytes, *, from_client: bool) -> tuple[Message, Form, list[str]]:
    if server_version < PROTOBUF:
        fields = split_fields(payload)
        msg = decode_request(fields) if from_client else decode_reply(server_version, fields)
        return msg, Form.TEXT, fields
    wire_id, body = split_binary_id(payload)
    if wire_id > 0xFFFF:
        # A pre-201 decimal id ("15\0...") read as 4 binary bytes: the peer
        # did not switch framing at 201 (the official client would answer
        # error 505 and never fire nextValidId).
        raise ProtocolError(f"message id {wire_id} at server version {server_version}",
                            "a text-era frame after negotiating >= 201 (the peer ignored the binary id rule)")
    msg_id, is_protobuf = unwire(wire_id)
    if is_protobuf:
        mtype = (REQUESTS if from_client else REPLIES).get(msg_id)
        if mtype is None:  # partial schemas beyond the account flow (market.py)
            mtype = (PROTO_REQUESTS if from_client else PROTO_REPLIES).get(msg_id)
        if mtype is None:
            # A protobuf message outside the startup/account flow (an order,
            # market data): name it, keep its size, decode nothing.
            values: dict[str, object] = {}
            msg = proto_message(msg_id, values, from_client=from_client)
            msg.raw = [f"<{len(body)} protobuf bytes>"]
        else:
            values = protobuf.decode(mtype, body)
            msg = proto_message(msg_id, values, from_client=from_client)
        return msg, Form.PROTOBUF, list(msg.raw)
    fields = [str(wire_id)] + (split_fields(body) if body else [])
    msg = decode_request(fields) if from_client else decode_reply(server_version, fields)
    return msg, Form.TEXT_BINARY_ID, fields


def decode_client_frame(server_version: int, payload: bytes) -> tuple[Message, Form, list[str]]:
    """A frame from the client after the handshake, in any of the three forms."""
    return _decode(server_version, payload, from_client=True)


def decode_server_frame(server_version: int, payload: bytes) -> tuple[Message, Form, list[str]]:
    """A frame from the Gateway after the version reply, in any of the three forms."""
    return _decode(server_version, payload, from_client=False)
