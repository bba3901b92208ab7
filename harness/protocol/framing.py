"""TWS API framing: 4-byte big-endian length, then NUL-terminated text fields.

The reader is incremental (feed any split of a byte stream, get whole
frames) so the mock, the raw client and the proxy share one implementation
and a slowloris client or a split TCP segment behaves identically.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from .errors import ProtocolError

# The official client rejects frames above 0xFFFFFF bytes (ibapi comm.py
# MAX_MSG_LEN); a real Gateway never sends one that large.
MAX_FRAME = 0xFFFFFF
HEADER = struct.Struct(">I")

Field = str | int | float | bool | None


def field_text(value: Field) -> str:
    """Render one field the way the official client's make_field does."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        # ibapi sends floats with repr-like text; keep integers free of ".0"
        # only when they were ints to begin with.
        return repr(value)
    return str(value)


def encode_fields(fields: Iterable[Field]) -> bytes:
    """Payload with every field NUL-terminated (the trailing NUL is required:
    both real clients drop the element after the last NUL)."""
    texts = [v if type(v) is str else str(v) if type(v) is int else field_text(v) for v in fields]  # hot path
    joined = "\0".join(texts)
    if joined.count("\0") == len(texts) - 1:
        return (joined + "\0").encode("ascii", "backslashreplace") if texts else b""
    out = bytearray()  # a field embeds NUL: find it and say which
    for value in fields:
        text = field_text(value)
        if "\0" in text:
            raise ProtocolError(f"field contains a NUL byte: {text!r}", "fields cannot embed NUL")
        out += text.encode("ascii", "backslashreplace")
        out += b"\0"
    return bytes(out)


def encode_frame(payload: bytes, limit: int = MAX_FRAME) -> bytes:
    """Length-prefix a payload."""
    if not payload:
        raise ProtocolError("empty frame", "a zero-length frame stalls ib_async's parser")
    if len(payload) > limit:
        raise ProtocolError(f"frame of {len(payload)} bytes exceeds the limit of {limit}")
    return HEADER.pack(len(payload)) + payload


def encode_message(fields: Sequence[Field]) -> bytes:
    """Fields -> complete framed message."""
    return encode_frame(encode_fields(fields))


def split_fields(payload: bytes) -> list[str]:
    """Payload -> text fields. A payload must end with NUL."""
    if not payload:
        raise ProtocolError("empty frame", "a frame must carry at least a message id")
    if not payload.endswith(b"\0"):
        raise ProtocolError("frame does not end with NUL", "every text field is NUL-terminated")
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"non-ASCII byte 0x{payload[exc.start]:02x} at offset {exc.start}",
            "text fields are 7-bit ASCII",
        ) from None
    return text.split("\0")[:-1]


def message_id(fields: Sequence[str]) -> int:
    """The numeric message id of a decoded text frame."""
    if not fields:
        raise ProtocolError("frame has no fields")
    raw = fields[0]
    if not (raw.isascii() and raw.isdigit()):
        raise ProtocolError(f"non-numeric message id {raw[:20]!r}", "the first field is a decimal id")
    if len(raw) > 9:  # int() refuses > 4,300 digits with ValueError; no id needs 10
        raise ProtocolError(f"message id of {len(raw)} digits", "the first field is a short decimal id")
    return int(raw)


class FrameReader:
    """Incremental length-prefix decoder.

    feed() returns every complete payload so far and keeps the remainder.
    The length limit is checked as soon as the 4 header bytes arrive, so an
    oversized prefix is rejected before any of its body is buffered.
    """

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self.limit = limit
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while len(self._buf) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buf)
            if length == 0:
                raise ProtocolError("zero-length frame", "a frame must carry at least a message id")
            if length > self.limit:
                raise ProtocolError(
                    f"frame length {length} exceeds the limit of {self.limit}",
                    "a corrupted or non-TWS length prefix",
                )
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append(bytes(self._buf[HEADER.size:end]))
            del self._buf[:end]
        return frames

    def finish(self) -> None:
        """Call at end of stream: leftover bytes mean a truncated frame."""
        if self._buf:
            raise ProtocolError(
                f"stream ended inside a frame ({len(self._buf)} bytes pending)",
                "the peer closed mid-message",
            )
