"""The one request guard every proxy path runs: frame by frame, fail closed.

Why a guard of its own rather than the transcript's decoder: the decoder
(harness/proxy/wire.py) exists to *show* frames, and a frame it cannot read
(a non-ASCII orderRef, an unknown layout) used to switch it off for the rest
of the stream, and the guard with it (issue 15). This guard needs only what
the Gateway itself reads first: the 4-byte length prefix and the message id.
It owns the framing of the client->Gateway stream, and the proxy forwards a
byte only after the guard has seen the whole frame it belongs to and allowed
it, so an order split into single bytes, coalesced with the hello and
startApi, or placed after an undecodable frame is still seen whole.

Fail closed: a stream that does not start with ``API\\0``, a hello that is
not a version range, a length prefix of 0 or above ibapi's MAX_MSG_LEN
(0xFFFFFF) end the connection; nothing after them is forwarded.

Message ids. A text-era id is read by the Gateway (Java) with
``Integer.parseInt``, which also accepts a leading ``+``/``-`` sign
(Java 7+), leading zeros and any Unicode decimal digit (``Character.digit``).
Real clients only ever send the canonical form (``str(int)``, ibapi
comm.make_field / ib_async client.send), so only that form passes; any other
id field is refused, and named after the message Java would read
(``"003"``, ``"+3"``, ``"\\uff13"`` are placeOrder). A text id with no NUL
after it, or a binary id shorter than 4 bytes, is refused too. A binary id
(server version >= 201) is a 4-byte big-endian int; id + 200 is the
protobuf form (ibapi common.PROTOBUF_MSG_ID).

What is refused unless the run allows it (ibapi-stable 10.50.2 message.OUT):

orders (``allow_orders``): placeOrder 3, cancelOrder 4, exerciseOptions 21,
reqGlobalCancel 58 (harness/safety/order_guard.py).

configuration changes (``allow_config_changes``):
  * setServerLogLevel 14: changes the Gateway's API log level for everyone;
  * replaceFA 19: rewrites the Financial Advisor groups/profiles of the account;
  * updateDisplayGroup 69: changes the contract shown in a TWS window group;
  * updateConfig 109 (protobuf 309, server version >= 221): the API settings
    themselves (Read-Only API, trusted IPs, order precautions).

Left out, and why: reqMarketDataType 59 (a per-connection setting, gone
with the connection); reqAutoOpenOrders 15 (binds TWS-entered orders to
client 0 for this session only; nothing is placed or changed); the
verifyRequest/verifyMessage/verifyAndAuth* 65/66/72/73 (third-party API
authentication, a step of connecting, not a setting); reqFA 18 and
reqConfig 108 (reads); reqIds 8 (hands out ids, places nothing); every
cancel*/req* subscription and query. Every id is refused in all three forms
(text, binary id, protobuf id + 200) whether or not ibapi sends that form.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass, field

from ..protocol.era import Form
from ..protocol.errors import ProtocolError
from ..protocol.framing import HEADER, MAX_FRAME
from ..protocol.handshake import API_PREFIX, parse_hello, parse_server_hello
from ..protocol.messages import error as error_fields
from ..protocol.orders import NO_ID, order_id_of
from ..protocol.versions import PROTOBUF
from ..protocol.wire import encode_in_form
from ..protocol.wire_id import MSG_ID, is_binary_id, split_binary_id, unwire
from .order_guard import (
    FORM_BINARY,
    FORM_PROTOBUF,
    FORM_TEXT,
    KIND_AMBIGUOUS,
    KIND_CONFIG,
    KIND_ORDER,
    ORDER_MESSAGE_IDS,
    BlockedOrder,
)

CONFIG_MESSAGE_IDS: dict[int, str] = {14: "setServerLogLevel", 19: "replaceFA", 69: "updateDisplayGroup",
                                      109: "updateConfig"}
_CANONICAL_ID = re.compile(rb"0|[1-9][0-9]{0,9}")
_JAVA_INT = (-(2**31), 2**31 - 1)

# The error a refused request answers with. 201 is what a real Gateway sends
# for an order it rejects ("Order rejected - reason:...", IB's TWS API
# message codes, and ib_async wrapper.error: any non-warning error on a
# pending Trade marks it Cancelled and logs the text). 321 ("Error validating
# request") is what it sends for a request refused under the Read-Only API
# setting; ib_async treats 321 as a warning, which fits a refused
# configuration change (no Trade to cancel).
ORDER_BLOCKED_CODE = 201
ORDER_BLOCKED_TEXT = "Order rejected - reason:ORDER BLOCKED by ibgw-harness: read-only run"
CONFIG_BLOCKED_CODE = 321
CONFIG_BLOCKED_TEXT = "Error validating request.-'ibgw' : cause - CONFIG CHANGE BLOCKED by ibgw-harness: read-only run"
AMBIGUOUS_BLOCKED_TEXT = ("Error validating request.-'ibgw' : cause - REQUEST BLOCKED by ibgw-harness: "
                          "unreadable message id")


def java_parse_int(text: str) -> int | None:
    """What Java's Integer.parseInt(text) returns, or None where it throws:
    an optional sign, then one or more Unicode decimal digits (leading zeros
    allowed), within the int range."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not all(ch.isdecimal() for ch in body):
        return None
    value = 0
    for ch in body:  # digit by digit: a 5,000-digit field stops at the first overflow
        value = value * 10 + unicodedata.decimal(ch)
        if value > 2**31:
            return None
    value = -value if text[:1] == "-" else value
    return value if _JAVA_INT[0] <= value <= _JAVA_INT[1] else None


@dataclass(frozen=True)
class RequestPolicy:
    """Which client requests a run lets through. Default: no orders, no
    configuration changes; each is allowed only by its own named option."""

    allow_orders: bool = False
    allow_config_changes: bool = False

    def describe(self) -> str:
        return ", ".join([f"orders {'ALLOWED' if self.allow_orders else 'refused'}",
                          f"config changes {'ALLOWED' if self.allow_config_changes else 'refused'}"])

    def _named(self, base: int | None, form: str, wire_id: int, detail: str = "") -> BlockedOrder | None:
        """The refusal for message `base` (the id the wire id stands for), or None."""
        if base in ORDER_MESSAGE_IDS:
            return None if self.allow_orders else BlockedOrder(ORDER_MESSAGE_IDS[base], form, wire_id, KIND_ORDER,
                                                               detail)
        if base in CONFIG_MESSAGE_IDS:
            return None if self.allow_config_changes else BlockedOrder(CONFIG_MESSAGE_IDS[base], form, wire_id,
                                                                       KIND_CONFIG, detail)
        return None

    def classify(self, payload: bytes) -> BlockedOrder | None:
        """The refusal for one client->Gateway frame payload (after the
        length prefix and the hello), or None to forward it."""
        if is_binary_id(payload):  # a 4-byte binary id: text fields (>= 201) or protobuf
            if len(payload) < MSG_ID.size:
                return BlockedOrder("?", FORM_BINARY, -1, KIND_AMBIGUOUS, f"binary id of {len(payload)} bytes")
            wire_id = split_binary_id(payload)[0]
            msg_id, is_protobuf = unwire(wire_id)
            return self._named(msg_id, FORM_PROTOBUF if is_protobuf else FORM_BINARY, wire_id)
        raw, sep, _ = payload.partition(b"\0")
        if sep and _CANONICAL_ID.fullmatch(raw):
            return self._named(int(raw), FORM_TEXT, int(raw))
        # Not the form any real client sends: refused whatever it is, named
        # after the message Java's parseInt would make of it.
        shown = raw[:24].decode("latin-1").encode("unicode_escape").decode("ascii")
        detail = f"non-canonical text id {shown!r}" + ("" if sep else " with no NUL after it")
        for charset in ("utf-8", "latin-1"):
            try:
                value = java_parse_int(raw.decode(charset))
            except UnicodeDecodeError:
                continue
            if value is not None:
                named = RequestPolicy()._named(value, FORM_TEXT, value, detail)
                if named is not None:
                    return named
        return BlockedOrder("?", FORM_TEXT, -1, KIND_AMBIGUOUS, detail)


@dataclass
class Verdict:
    """What one feed() decided: the bytes now safe to forward (whole,
    allowed frames, in order), and at most one reason to stop."""

    forward: bytes = b""
    blocked: BlockedOrder | None = None
    blocked_payload: bytes = b""
    fatal: str | None = None  # the stream cannot be framed: close, tell nobody anything in-band


class ClientStreamGuard:
    """Frames the client->Gateway stream of one connection and releases
    only bytes it has classified. After a refusal or a framing error it is
    closed: every later feed() is refused."""

    def __init__(self, policy: RequestPolicy, limit: int = MAX_FRAME) -> None:
        self.policy = policy
        self.limit = limit
        self._buf = bytearray()
        self._prefix_ok = False
        self._hello_ok = False
        self.closed: str | None = None
        self.frames = 0

    def feed(self, data: bytes) -> Verdict:
        if self.closed:
            return Verdict(fatal=self.closed)
        self._buf += data
        verdict = Verdict()
        forward = bytearray()
        if not self._prefix_ok:
            n = min(len(self._buf), len(API_PREFIX))
            if bytes(self._buf[:n]) != API_PREFIX[:n]:
                return self._fatal(verdict, f"the stream does not start with API\\0 (got {bytes(self._buf[:8])!r})")
            if n < len(API_PREFIX):
                return verdict
            forward += self._buf[:n]
            del self._buf[:n]
            self._prefix_ok = True
        buf, pos = self._buf, 0  # consumed once at the end: no copy per frame
        try:
            while len(buf) - pos >= HEADER.size:
                (length,) = HEADER.unpack_from(buf, pos)
                if length == 0 or length > self.limit:
                    verdict.forward = bytes(forward)
                    return self._fatal(verdict, f"impossible frame length {length} (allowed 1..{self.limit})")
                end = pos + HEADER.size + length
                if len(buf) < end:
                    break
                payload = bytes(buf[pos + HEADER.size:end])
                if not self._hello_ok:
                    try:
                        parse_hello(payload)
                    except ProtocolError as exc:
                        verdict.forward = bytes(forward)
                        return self._fatal(verdict, f"the first frame is not a version range: {exc.cause}")
                    self._hello_ok = True
                else:
                    blocked = self.policy.classify(payload)
                    if blocked is not None:
                        verdict.forward, verdict.blocked, verdict.blocked_payload = bytes(forward), blocked, payload
                        self.closed = f"the stream was closed after refusing {blocked.name}"
                        buf.clear()
                        return verdict
                self.frames += 1
                forward += buf[pos:end]
                pos = end
        finally:
            del buf[:pos]
        verdict.forward = bytes(forward)
        return verdict

    def _fatal(self, verdict: Verdict, cause: str) -> Verdict:
        self.closed = verdict.fatal = (f"REFUSED (fail closed): {cause}; the guard cannot classify the client's "
                                       "stream, so nothing more of it is forwarded")
        self._buf.clear()
        return verdict


@dataclass
class ServerStreamTracker:
    """Frame boundaries of the Gateway->client stream and the negotiated
    version from its hello: where a refusal may be put into the stream
    without cutting a Gateway frame, and in which era to write it."""

    limit: int = MAX_FRAME
    server_version: int | None = None
    broken: str | None = None
    _need: int = HEADER.size  # bytes still missing from the current header or body
    _header: bytearray = field(default_factory=bytearray)
    _in_body: bool = False
    _hello: bytearray | None = field(default_factory=bytearray)

    @property
    def at_boundary(self) -> bool:
        return not self._in_body and not self._header

    def feed(self, data: bytes, *, first_only: bool = False) -> list[int]:
        """Offsets in data just after each frame that completes in it.
        first_only: stop consuming at the first frame end (the caller
        forwards only data[:ends[0]], so the tracker must not run ahead)."""
        ends: list[int] = []
        i = 0
        while i < len(data) and not self.broken and not (first_only and ends):
            if not self._in_body:
                take = min(HEADER.size - len(self._header), len(data) - i)
                self._header += data[i:i + take]
                i += take
                if len(self._header) < HEADER.size:
                    break
                (length,) = HEADER.unpack(bytes(self._header))
                if length == 0 or length > self.limit:
                    self.broken = f"Gateway frame length {length}"
                    break
                self._header.clear()
                self._in_body, self._need = True, length
                continue
            take = min(self._need, len(data) - i)
            if self._hello is not None:
                self._hello += data[i:i + take]
            i += take
            self._need -= take
            if self._need == 0:
                self._in_body = False
                ends.append(i)
                if self._hello is not None:
                    try:
                        self.server_version = parse_server_hello(bytes(self._hello))[0]
                    except ProtocolError as exc:
                        self.broken = f"server hello: {exc.cause}"
                    self._hello = None
        return ends


def refusal_frame(server_version: int, blocked: BlockedOrder, payload: bytes) -> bytes:
    """The error a client gets for its refused request, in the negotiated
    era, built by the mock's own encoders: the text error (message 4) in the
    layout of that server version below 201, the protobuf ErrorMessage (id
    204) from 201, the form ibapi's decoder (processErrorMsgProtoBuf) reads
    and a real TWS at 205 sent (scmhub/ibsync#11)."""
    order_id = _request_id(server_version, blocked, payload)
    code, text = {KIND_ORDER: (ORDER_BLOCKED_CODE, ORDER_BLOCKED_TEXT),
                  KIND_CONFIG: (CONFIG_BLOCKED_CODE, CONFIG_BLOCKED_TEXT)}.get(
        blocked.kind, (CONFIG_BLOCKED_CODE, AMBIGUOUS_BLOCKED_TEXT))
    fields = error_fields(server_version, order_id, code, text, error_time_ms=int(time.time() * 1000))
    form = Form.PROTOBUF if server_version >= PROTOBUF else Form.TEXT
    return encode_in_form(form, server_version, fields, from_client=False)[0]


def _request_id(server_version: int, blocked: BlockedOrder, payload: bytes) -> int:
    """The order id a refusal carries (the request's own id field): clients
    key their order bookkeeping on it. Non-ASCII bytes in text fields are
    masked first: only the id field's position matters, and the codec reads
    ASCII only."""
    if blocked.kind != KIND_ORDER:
        return NO_ID
    if blocked.form != FORM_PROTOBUF:
        head = 4 if blocked.form == FORM_BINARY else 0
        payload = payload[:head] + bytes(b if b < 0x80 else 0x3F for b in payload[head:])
        if blocked.form == FORM_TEXT and b"\0" in payload:  # the id as parseInt read it ("003" -> 3)
            payload = str(blocked.wire_id).encode() + payload[payload.index(b"\0"):]
    order_id = order_id_of(server_version, payload)
    return order_id if _JAVA_INT[0] <= order_id <= _JAVA_INT[1] else NO_ID  # an order id is a Java int

__all__ = ["CONFIG_BLOCKED_CODE", "CONFIG_BLOCKED_TEXT", "CONFIG_MESSAGE_IDS", "ORDER_BLOCKED_CODE",
           "ORDER_BLOCKED_TEXT", "ClientStreamGuard", "RequestPolicy", "ServerStreamTracker", "Verdict",
           "java_parse_int", "refusal_frame"]
