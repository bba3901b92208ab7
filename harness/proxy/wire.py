"""Decoding what flows through the proxy: frames, message names, the
negotiated server version, and the request guards' view of each frame.

Why the proxy decodes at all: against a real Gateway the only other
wire-level record is the Gateway's API log, which the user must enable and
fetch by hand. The proxy sees both directions, so every live run can carry
a Gateway-side transcript as evidence, and an order guard can refuse a
request before it reaches the Gateway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..core.redact import remember_accounts
from ..protocol.errors import ProtocolError
from ..protocol.frame import DOWN, UP, Frame, FrameRecord
from ..protocol.framing import FrameReader, split_fields
from ..protocol.handshake import (
    API_PREFIX,
    check_prefix,
    parse_hello,
    parse_server_hello,
)
from ..protocol.messages import (
    In,
    Message,
    decode_reply,
    decode_request,
    message_name,
)
from ..protocol.versions import PROTOBUF
from ..protocol.wire import decode_server_frame
from ..protocol.wire_id import MSG_ID, split_binary_id, unwire
from ..safety.order_guard import classify_order

# A guard (on client->Gateway requests, or on Gateway->client replies):
# returns None to let the frame through, or the reason it is refused.
RequestGuard = Callable[[Frame], "str | None"]


def order_guard(frame: Frame) -> str | None:
    """Refuse every order message (placeOrder, cancelOrder, reqGlobalCancel,
    exerciseOptions) in all three wire forms, as a Frame guard for callers
    that add guards of their own. The proxy no longer needs it: its request
    guard (harness/safety/stream_guard.py) frames the client's stream itself
    and runs before any Frame guard."""
    if frame.direction != UP or frame.kind != "message":
        return None
    order = classify_order(frame.payload)
    return order.reason if order is not None else None


# The proxy's transcript entry is the one transcript record (protocol/frame.py
# FrameRecord): t is seconds since the proxy started, wall and size are always
# set. Its JSON line and text line are the proxy's own formats, written from
# those fields.


def entry_dict(entry: FrameRecord) -> dict[str, Any]:
    """One line of the proxy's JSON Lines transcript (its keys, in its order)."""
    return {"t": entry.t, "wall": entry.wall, "conn_id": entry.conn_id, "direction": entry.direction,
            "name": entry.name, "size": entry.size, "fields": list(entry.fields), "note": entry.note}


def entry_text(entry: FrameRecord) -> str:
    """One line of the proxy's readable transcript."""
    arrow = {UP: "->", DOWN: "<-"}.get(entry.direction, "--")
    body = "|".join(entry.fields[:12]) + ("|..." if len(entry.fields) > 12 else "")
    note = f"  # {entry.note}" if entry.note else ""
    return f"{entry.t:10.3f} conn {entry.conn_id:<4} {arrow} {entry.name:<28} {body}{note}"


def note_entry(origin: float, conn_id: int, direction: str, text: str) -> FrameRecord:
    """A proxy event (accept, FIN, close, a fault) as a transcript entry."""
    return FrameRecord(conn_id, round(time.monotonic() - origin, 6), direction, "(proxy)", note=text,
                       wall=time.time(), size=0)


class WireDecoder:
    """Frames of one direction of one connection, decoded as they complete.

    The client->Gateway stream starts with `API\\0` and the framed version
    range; the Gateway->client stream starts with the server hello, which
    carries the negotiated server version the replies are decoded at.
    Decoding never affects forwarding or the request guard (which frames
    the client's stream itself, harness/safety/stream_guard.py): a frame
    that cannot be decoded is recorded as "undecodable" and the frames
    before and after it are decoded as usual; only a stream that cannot be
    framed at all (a bad prefix or length) marks the direction broken.
    """

    def __init__(self, conn_id: int, direction: str, peer: WireDecoder | None = None) -> None:
        self.conn_id = conn_id
        self.direction = direction
        self.frames = FrameReader()
        self.prefix = b"" if direction == UP else API_PREFIX  # Gateway->client has no prefix
        self.hello_seen = False
        self.server_version: int | None = None
        self.peer = peer  # the other direction (to share the server version)
        self.broken: str | None = None
        self.accounts: set[str] = set()

    def feed(self, data: bytes) -> list[Frame]:
        if self.broken:
            return []
        try:
            if len(self.prefix) < len(API_PREFIX):
                need = len(API_PREFIX) - len(self.prefix)
                self.prefix += data[:need]
                check_prefix(self.prefix)
                data = data[need:]
            payloads = self.frames.feed(data)
        except ProtocolError as exc:
            self.broken = str(exc)
            return [Frame(self.conn_id, self.direction, "message", "undecodable", data, None, None, None)]
        frames = []
        for payload in payloads:
            try:
                frames.append(self._frame(payload))
            except ProtocolError:
                frames.append(Frame(self.conn_id, self.direction, "message", "undecodable", payload, None, None,
                                    self._version()))
        return frames

    def _version(self) -> int | None:
        if self.server_version is None and self.peer is not None:
            return self.peer.server_version
        return self.server_version

    def _frame(self, payload: bytes) -> Frame:
        version: int | None
        if not self.hello_seen:
            self.hello_seen = True
            if self.direction == UP:
                hello = parse_hello(payload)
                return Frame(self.conn_id, UP, "hello", f"hello v{hello.min_version}..{hello.max_version}",
                             payload, [payload.rstrip(b"\0").decode("ascii")], None, None)
            version, when = parse_server_hello(payload)
            self.server_version = version
            return Frame(self.conn_id, DOWN, "hello", f"server hello v{version}", payload, [str(version), when],
                         None, version)
        version = self._version()
        if version is not None and version >= PROTOBUF:
            return self._binary(payload, version)
        fields = split_fields(payload)
        msg = decode_request(fields) if self.direction == UP else decode_reply(version or 0, fields)
        accounts = self._accounts(msg) if msg.msg_id == In.MANAGED_ACCTS and self.direction == DOWN else None
        return Frame(self.conn_id, self.direction, "message", msg.name, payload, fields, msg.msg_id, version, accounts)

    def _accounts(self, managed_accounts: Message) -> list[str]:
        """The ids a managedAccounts lists, kept for redaction too."""
        accounts = [a for a in str(managed_accounts.fields.get("accounts", "")).split(",") if a]
        self.accounts.update(accounts)
        remember_accounts(accounts)  # every writer in this process hides them from now on
        return accounts

    def _binary(self, payload: bytes, version: int) -> Frame:
        """Protobuf era: a 4-byte binary message id, then text or protobuf bytes."""
        msg_id = split_binary_id(payload)[0] if len(payload) >= MSG_ID.size else None
        base, is_protobuf = unwire(msg_id) if msg_id is not None else (None, False)
        name = "?" if base is None else message_name(base, from_client=self.direction == UP)
        if is_protobuf:
            name += " (protobuf)"
        accounts = None
        if self.direction == DOWN and base == In.MANAGED_ACCTS:
            # Read in full: redaction and the paper-account guard need the ids in both eras.
            try:
                accounts = self._accounts(decode_server_frame(version, payload)[0])
            except ProtocolError:
                name += " (unreadable)"
        return Frame(self.conn_id, self.direction, "message", name, payload, None, msg_id, version, accounts)


def entry_for(frame: Frame, origin: float, note: str = "") -> FrameRecord:
    now = time.monotonic()
    return FrameRecord(frame.conn_id, round(now - origin, 6), frame.direction, frame.name,
                       fields=list(frame.fields or []), note=note, wall=time.time(), size=len(frame.payload) + 4)
