"""The connection preamble: `API\\0`, the client's version range, the
server's version/connection-time reply, and startApi.

Also the one hand-written client side of it (exchange_versions,
start_api_frame): the raw client, the stdlib health check, the version
probe and the harness's own tests all open a connection this way, so a
fix to how the version reply is read is made once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ProtocolError
from .framing import FrameReader, encode_frame, encode_message, split_fields
from .versions import OPTIONAL_CAPABILITIES, PROTOBUF

API_PREFIX = b"API\0"
START_API = 71
START_API_VERSION = 2

# At most 9 digits: a version fits easily, and int() of a hostile
# 5,000-digit "version" would raise ValueError instead of a ProtocolError.
_RANGE = re.compile(r"^v(\d{1,9})(?:\.\.(\d{1,9}))?(?: (.*))?$")


@dataclass(frozen=True)
class Hello:
    """What the client offered: the version range and connect options."""

    min_version: int
    max_version: int
    options: str = ""


def encode_hello(min_version: int, max_version: int, options: str = "") -> bytes:
    """Client bytes: `API\\0` + one framed range text (no trailing NUL, as real clients send)."""
    text = f"v{min_version}..{max_version}" if min_version != max_version else f"v{min_version}"
    if options:
        text += f" {options}"
    return API_PREFIX + encode_frame(text.encode("ascii"))


def check_prefix(data: bytes) -> None:
    """Raise unless data (the first 4 bytes or fewer) is a prefix of `API\\0`."""
    n = min(len(data), len(API_PREFIX))
    if data[:n] != API_PREFIX[:n]:
        raise ProtocolError(
            f"connection did not start with API\\0 (got {data[:8]!r})",
            "not a TWS API client, or a client for a different port/protocol",
        )


def parse_hello(payload: bytes) -> Hello:
    """The framed range text after `API\\0`: `v157..178[ +PACEAPI]`."""
    try:
        text = payload.rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("version range is not ASCII", "expected text like v157..178") from None
    match = _RANGE.fullmatch(text)
    if not match:
        raise ProtocolError(f"bad version range {text[:40]!r}", "expected text like v157..178")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if low > high:
        raise ProtocolError(f"version range {low}..{high} is inverted")
    return Hello(low, high, match.group(3) or "")


def format_connection_time(when: datetime | None = None, zone_name: str = "UTC", iana_zone: str = "UTC") -> str:
    """`yyyyMMdd HH:mm:ss <TZ>` as the Gateway sends it: local time in the
    Gateway's zone, followed by the zone's Java display name. Falls back to
    UTC where the system has no zone database (a bare python image)."""
    when = when or datetime.now(timezone.utc)
    try:
        local = when.astimezone(ZoneInfo(iana_zone))
    except (ZoneInfoNotFoundError, ValueError):
        local, zone_name = when.astimezone(timezone.utc), "UTC"
    return f"{local:%Y%m%d %H:%M:%S} {zone_name}"


def encode_server_hello(server_version: int, connection_time: str) -> bytes:
    """The server's reply: exactly two fields, version and connection time."""
    return encode_message([server_version, connection_time])


def parse_server_hello(payload: bytes) -> tuple[int, str]:
    fields = split_fields(payload)
    if len(fields) != 2:
        raise ProtocolError(
            f"server hello has {len(fields)} fields, expected 2", "expected <version>\\0<time>\\0"
        )
    if not (fields[0].isascii() and fields[0].isdigit() and len(fields[0]) <= 9):
        raise ProtocolError(f"server version {fields[0][:20]!r} is not a number")
    return int(fields[0]), fields[1]


def encode_start_api(client_id: int, server_version: int, capabilities: str = "") -> bytes:
    fields: list[object] = [START_API, START_API_VERSION, client_id]
    if server_version >= OPTIONAL_CAPABILITIES:
        fields.append(capabilities)
    return encode_message(fields)  # type: ignore[arg-type]


def start_api_frame(client_id: int, server_version: int, capabilities: str = "") -> bytes:
    """startApi in the form the official client sends at this version: text
    below 201, a binary id from 201 and protobuf from 213 (era.py)."""
    if server_version < PROTOBUF:
        return encode_start_api(client_id, server_version, capabilities)
    from .wire import encode_request  # the era table sits above this module

    return encode_request(server_version, [START_API, START_API_VERSION, client_id, capabilities])[0]


class ClosedBeforeVersion(ConnectionError):
    """The peer closed the connection before its version reply."""

    def __init__(self, text: str = "the Gateway closed the connection before the version reply") -> None:
        super().__init__(text)


@dataclass
class VersionReply:
    """The server hello, and the stream after it: the reader that framed it
    and any frames that arrived in the same reads (the start-up may follow
    at once)."""

    server_version: int
    connection_time: str
    frames: FrameReader
    pending: list[bytes] = field(default_factory=list)


async def exchange_versions(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, min_version: int,
                            max_version: int, options: str = "", *,
                            sniff: Callable[[bytes], None] | None = None) -> VersionReply:
    """Send `API\\0` and the version range, read up to the server hello.

    sniff: called with every chunk read before the reply (an empty one at
    EOF), so a caller can name a non-TWS peer from its first bytes. Raises
    ClosedBeforeVersion at EOF and ProtocolError for bytes that are not a
    version reply; bounded by the caller's timeout."""
    writer.write(encode_hello(min_version, max_version, options))
    frames = FrameReader()
    pending: list[bytes] = []
    while not pending:
        data = await reader.read(65536)
        if sniff is not None:
            sniff(data)
        if not data:
            raise ClosedBeforeVersion()
        pending = frames.feed(data)
    version, when = parse_server_hello(pending.pop(0))
    return VersionReply(version, when, frames, pending)
