"""A minimal proto3 wire codec, standard library only.

Why hand-written: the mock and the raw client must run in a bare python3
(no `protobuf` wheel), and the TWS API's startup and account messages use a
tiny subset of proto3: varints (int32, int64, bool), doubles, strings and
nested messages, a few packed repeated int32 fields. No zigzag, no fixed32,
no enums, no groups.

Values are plain dicts keyed by field name. proto3 `optional` means
explicit presence: a key in the dict is written even when it holds 0 or "",
a missing key is not written. That is what lets a decoded frame be encoded
back byte for byte, and what the official decoder's HasField() checks see.
Fields are written in field-number order, as the official serializer does.
Unknown fields are skipped on decode (newer Gateways add fields).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError

# Wire types (https://protobuf.dev/programming-guides/encoding/).
VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5

SCALARS = ("int32", "int64", "bool", "double", "string", "bytes")
_VARINT_TYPES = ("int32", "int64", "bool")
_DOUBLE = struct.Struct("<d")
_U64 = (1 << 64) - 1


@dataclass(frozen=True)
class ProtoField:
    """One field of a message: number, name, type (a scalar name or a
    MessageType), and its label (repeated, or proto3 optional)."""

    number: int
    name: str
    type: str | MessageType
    repeated: bool = False
    optional: bool = True  # explicit presence; every non-repeated TWS field is declared optional

    @property
    def type_name(self) -> str:
        return self.type if isinstance(self.type, str) else self.type.name

    @property
    def is_message(self) -> bool:
        return isinstance(self.type, MessageType)


@dataclass(frozen=True)
class MessageType:
    name: str
    fields: tuple[ProtoField, ...] = ()

    def field(self, name: str) -> ProtoField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    def by_number(self) -> dict[int, ProtoField]:
        return {f.number: f for f in self.fields}


# ---------------------------------------------------------------- primitives


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128 of the value's low 64 bits: a negative int32/int64
    becomes the 10-byte sign-extended form (`ff ff ff ff ff ff ff ff ff 01`)."""
    value &= _U64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(unsigned value, next position)."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtocolError("protobuf: truncated varint", "the frame ended inside a number")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise ProtocolError("protobuf: varint longer than 10 bytes")


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _key(number: int, wire_type: int) -> bytes:
    return encode_varint((number << 3) | wire_type)


# ---------------------------------------------------------------- encode


def _encode_scalar(type_name: str, value: Any) -> tuple[int, bytes]:
    if type_name in ("int32", "int64"):
        return VARINT, encode_varint(int(value))
    if type_name == "bool":
        return VARINT, encode_varint(1 if value else 0)
    if type_name == "double":
        return I64, _DOUBLE.pack(float(value))
    if type_name == "string":
        raw = str(value).encode("utf-8")
        return LEN, encode_varint(len(raw)) + raw
    if type_name == "bytes":
        raw = bytes(value)
        return LEN, encode_varint(len(raw)) + raw
    raise ProtocolError(f"protobuf: unsupported type {type_name}")


def encode(message_type: MessageType, values: Mapping[str, Any]) -> bytes:
    """dict -> bytes. Keys not in the schema are an error (a typo would
    otherwise silently drop a field the client needs)."""
    unknown = set(values) - {f.name for f in message_type.fields}
    if unknown:
        raise ProtocolError(f"protobuf: {message_type.name} has no field(s) {', '.join(sorted(unknown))}")
    out = bytearray()
    for f in sorted(message_type.fields, key=lambda f: f.number):
        if f.name not in values:
            continue
        value = values[f.name]
        if f.repeated:
            items = list(value)
            if not items:
                continue
            if isinstance(f.type, MessageType):
                for item in items:
                    body = encode(f.type, item)
                    out += _key(f.number, LEN) + encode_varint(len(body)) + body
            elif f.type in _VARINT_TYPES or f.type == "double":
                # proto3 packs repeated scalar numbers by default
                body = b"".join(_encode_scalar(f.type, item)[1] for item in items)
                out += _key(f.number, LEN) + encode_varint(len(body)) + body
            else:
                for item in items:
                    wire, body = _encode_scalar(f.type, item)
                    out += _key(f.number, wire) + body
            continue
        if value is None:
            continue
        if isinstance(f.type, MessageType):
            body = encode(f.type, value)
            out += _key(f.number, LEN) + encode_varint(len(body)) + body
        else:
            if not f.optional and _is_default(f.type, value):
                continue  # implicit presence: defaults are not written
            wire, body = _encode_scalar(f.type, value)
            out += _key(f.number, wire) + body
    return bytes(out)


def _is_default(type_name: str, value: Any) -> bool:
    return value in (0, 0.0, False, "", b"")


# ---------------------------------------------------------------- decode


def _decode_scalar(type_name: str, wire: int, data: bytes, pos: int) -> tuple[Any, int]:
    if type_name in _VARINT_TYPES:
        if wire != VARINT:
            raise ProtocolError(f"protobuf: {type_name} with wire type {wire}")
        raw, pos = decode_varint(data, pos)
        if type_name == "bool":
            return raw != 0, pos
        return _signed(raw, 32 if type_name == "int32" else 64), pos
    if type_name == "double":
        if wire != I64:
            raise ProtocolError(f"protobuf: double with wire type {wire}")
        if pos + 8 > len(data):
            raise ProtocolError("protobuf: truncated double")
        return _DOUBLE.unpack_from(data, pos)[0], pos + 8
    if wire != LEN:
        raise ProtocolError(f"protobuf: {type_name} with wire type {wire}")
    body, pos = _read_len(data, pos)
    if type_name == "string":
        try:
            return body.decode("utf-8"), pos
        except UnicodeDecodeError:
            raise ProtocolError("protobuf: string field is not UTF-8") from None
    return body, pos


def _read_len(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = decode_varint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError(f"protobuf: length {length} runs past the end of the frame")
    return data[pos:end], end


def _skip(wire: int, data: bytes, pos: int) -> int:
    if wire == VARINT:
        return decode_varint(data, pos)[1]
    if wire == I64:
        return pos + 8
    if wire == I32:
        return pos + 4
    if wire == LEN:
        return _read_len(data, pos)[1]
    raise ProtocolError(f"protobuf: unsupported wire type {wire} (groups are not used by the TWS API)")


def decode(message_type: MessageType, data: bytes) -> dict[str, Any]:
    """bytes -> dict of the fields present. Repeated fields accept packed
    and unpacked encodings; unknown fields are skipped."""
    fields = message_type.by_number()
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(data):
        key, pos = decode_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtocolError("protobuf: field number 0")
        f = fields.get(number)
        if f is None:
            pos = _skip(wire, data, pos)
            if pos > len(data):
                raise ProtocolError("protobuf: truncated unknown field")
            continue
        if isinstance(f.type, MessageType):
            if wire != LEN:
                raise ProtocolError(f"protobuf: {f.name} with wire type {wire}")
            body, pos = _read_len(data, pos)
            value = decode(f.type, body)
            if f.repeated:
                out.setdefault(f.name, []).append(value)
            else:
                out[f.name] = value  # proto3 would merge; TWS never sends a message twice
            continue
        if f.repeated and wire == LEN and f.type not in ("string", "bytes"):
            body, pos = _read_len(data, pos)  # packed
            items = out.setdefault(f.name, [])
            inner = 0
            while inner < len(body):
                item, inner = _decode_scalar(f.type, VARINT if f.type in _VARINT_TYPES else I64, body, inner)
                items.append(item)
            continue
        value, pos = _decode_scalar(f.type, wire, data, pos)
        if f.repeated:
            out.setdefault(f.name, []).append(value)
        else:
            out[f.name] = value
    if pos != len(data):
        raise ProtocolError("protobuf: field runs past the end of the frame")
    return out


def describe(values: Mapping[str, Any]) -> list[str]:
    """`name=value` strings for transcripts; nested messages in braces."""
    parts: list[str] = []
    for name, value in values.items():
        if isinstance(value, Mapping):
            parts.append(f"{name}={{{', '.join(describe(value))}}}")
        elif isinstance(value, list):
            inner = [("{" + ", ".join(describe(v)) + "}") if isinstance(v, Mapping) else repr(v) for v in value]
            parts.append(f"{name}=[{', '.join(inner)}]")
        else:
            parts.append(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}")
    return parts
