"""The TWS API wire codec, standard library only: the text protocol (server versions 100..200) and,
from 201 to 226, binary message ids and protobuf (era.py, protobuf.py, proto_messages.py, wire.py)."""

from . import messages, versions
from .errors import ProtocolError
from .framing import MAX_FRAME, FrameReader, encode_fields, encode_frame, encode_message, message_id, split_fields
from .handshake import (
    API_PREFIX,
    Hello,
    check_prefix,
    encode_hello,
    encode_server_hello,
    encode_start_api,
    format_connection_time,
    parse_hello,
    parse_server_hello,
)
from .messages import In, Message, Out, decode_reply, decode_request, message_name

__all__ = [
    "API_PREFIX", "MAX_FRAME", "FrameReader", "Hello", "In", "Message", "Out", "ProtocolError",
    "check_prefix", "decode_reply", "decode_request", "encode_fields", "encode_frame", "encode_hello",
    "encode_message", "encode_server_hello", "encode_start_api", "format_connection_time", "message_id",
    "message_name", "messages", "parse_hello", "parse_server_hello", "split_fields", "versions",
]
