"""One client connection to the mock Gateway, from accept to close.

Why a class per connection: every connection negotiates its own server
version and keeps its own transcript, and any failure inside it (bad bytes,
a client that vanishes) must end that connection alone, with a logged
cause, never the server.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from ..protocol import messages as m
from ..protocol.era import Form, get_reply_model
from ..protocol.errors import ProtocolError
from ..protocol.framing import Field, FrameReader, encode_message
from ..protocol.handshake import API_PREFIX, check_prefix, encode_server_hello, format_connection_time, parse_hello
from ..protocol.messages import In, Message, Out
from ..protocol.orders import order_id_of
from ..protocol.versions import CURRENT_TIME_IN_MILLIS, ERROR_TIME, PROTOBUF
from ..protocol.wire import decode_client_frame, encode_in_form
from . import lean, requests_market
from .faults.startup import END_MESSAGES
from .transcript import ConnectionRecord, sent_entry

if TYPE_CHECKING:
    from .gateway import MockGateway

log = logging.getLogger("harness.mock")
T = TypeVar("T")

READ_CHUNK = 65536
# Where a session's coroutine starts: at accept (PREFIX), or where the
# callback path (accept.py) handed the connection over: the hello frame,
# the frames up to startApi, or the API's requests.
PREFIX, HELLO, START, API = 0, 1, 2, 3

# Error codes the mock sends, with the texts real Gateways use.
CLIENT_ID_IN_USE = (326, "Unable to connect as the client id is already in use. Retry with a unique client id.")
READ_ONLY = (321, "Error validating request.-'bO' : cause - The API interface is currently in Read-Only mode.")
NOT_EXECUTED = (201, "Order rejected - reason:the mock Gateway never executes orders")
CONNECTIVITY_LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")
CONNECTIVITY_RESTORED = (1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
FARMS_BROKEN = ((2103, "Market data farm connection is broken:usfarm"),
                (2105, "HMDS data farm connection is broken:ushmds"))
# The nightly reset's end (IbcAlpha/IBC#143, #251): 1102 carries the farm list;
# 1101 means the data was lost and subscriptions must be made again
# (QuantConnect/Lean PR #960). Paper accounts then report farms inactive.
CONNECTIVITY_RESTORED_FARMS = (1102, "Connectivity between IB and Trader Workstation has been restored - data "
                                     "maintained. All data farms are connected: usfarm; ushmds; secdefnj.")
CONNECTIVITY_RESTORED_LOST = (1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
FARMS_INACTIVE = ((2108, "Market data farm connection is inactive but should be available upon demand.usfarm"),
                  (2107, "HMDS data farm connection is inactive but should be available upon demand.ushmds"))
UNKNOWN_ACCOUNT = (321, "Error validating request.-'bB' : cause - Invalid account code")
# A Java int: what the Gateway's Java code parses order ids, request ids,
# client ids and reqIds counts into (Integer.parseInt: optional sign, ASCII digits).
JAVA_INT_MIN, JAVA_INT_MAX = -(1 << 31), (1 << 31) - 1
_JAVA_INT_TEXT = re.compile(r"[+-]?[0-9]+")
# Close causes that are routine, not a fault or an error: their line is rate-bounded.
_ROUTINE_CLOSES = frozenset({"client closed the connection", "mock shutting down"})


class ConnectionClosed(Exception):
    """The session decided to end the connection; the cause is the message."""


class Refused(ConnectionClosed):
    """A connection the mock will not serve (a value out of range, the
    handshake deadline, the API cap): closed with one warning line, and
    before any shared state changed."""


class Session:
    def __init__(self, gateway: MockGateway, transport: asyncio.Transport, record: ConnectionRecord,
                 reader: asyncio.StreamReader | None = None, writer: asyncio.StreamWriter | None = None) -> None:
        self.gw = gateway
        self.transport = transport
        # The streams the coroutine reads and drains through: from accept
        # (gateway._accept), or made when the callback path hands over;
        # None while accept.Connection serves the session from callbacks.
        self.reader = reader
        self.writer = writer
        self.conn: Any = None  # accept.Connection while it serves (or served) this session from callbacks
        self.record = record
        self.frames = FrameReader(limit=gateway.frame_limit)
        self.pending: list[bytes] = []
        self._out: list[bytes] | None = None  # the burst being built (one write), None: write at once
        self.server_version = 0
        self.client_id: int | None = None
        self.holds_client_id = False
        self.client_eof = False  # the client closed its side (an explicit disconnect)
        self.drop_cause: str | None = None  # set by the gateway before it cancels us
        self._later: set[asyncio.Task[None]] = set()  # delayed replies (faults)
        self._origin: int | None = None  # the request being answered: picks the reply form at >= 201
        self._deadline: asyncio.Timeout | None = None  # the handshake deadline, until startApi
        self._out_of_range = ""  # why the negotiated version is below the client's minimum, if it is
        self.reply_model = get_reply_model(gateway.profile.reply_model)
        # Who answers after startApi: None = the account model handlers below;
        # a replay responder (harness/recording/replay.py) otherwise. The
        # handshake, the order refusal and every fault stay here either way.
        factory = getattr(gateway, "responder_factory", None)
        self.responder = factory(self) if factory is not None else None
        # Contracts, bars, quotes, PnL, the market data type and every other
        # request's answer: the market desk's ~110 handlers, installed on the
        # first request the table above lacks (about 20 KiB a session that
        # 10,000 idle sessions would otherwise hold).
        self.desk: object | None = None

    @functools.cached_property
    def _handlers(self) -> dict[int, Callable[[Message], None]]:
        """The account flow's handlers, made on the first request (a
        handshake that ends before one never builds the table)."""
        return {
            Out.REQ_IDS: self._on_req_ids,
            Out.REQ_MANAGED_ACCTS: self._on_req_managed_accts,
            Out.REQ_CURRENT_TIME: self._on_req_current_time,
            Out.REQ_CURRENT_TIME_IN_MILLIS: self._on_req_current_time_millis,
            Out.REQ_POSITIONS: self._on_req_positions,
            Out.CANCEL_POSITIONS: self._ignore,
            Out.REQ_OPEN_ORDERS: self._on_req_open_orders,
            Out.REQ_ALL_OPEN_ORDERS: self._on_req_open_orders,
            Out.REQ_AUTO_OPEN_ORDERS: self._on_req_auto_open_orders,
            Out.REQ_COMPLETED_ORDERS: self._on_req_completed_orders,
            Out.REQ_ACCT_DATA: self._on_req_account_updates,
            Out.REQ_ACCOUNT_UPDATES_MULTI: self._on_req_account_updates_multi,
            Out.CANCEL_ACCOUNT_UPDATES_MULTI: self._ignore,
            Out.REQ_ACCOUNT_SUMMARY: self._on_req_account_summary,
            Out.CANCEL_ACCOUNT_SUMMARY: self._ignore,
            Out.REQ_EXECUTIONS: self._on_req_executions,
        }

    # ------------------------------------------------------------ lifecycle

    async def run(self, stage: int = PREFIX, exc: Exception | None = None) -> None:
        """The connection from `stage` to its close: from accept, or from
        where the callback path handed over (raising what it raised there,
        so the close cause and its line are the ones this coroutine gives)."""
        cause = "client closed the connection"
        try:
            if exc is not None:
                raise exc
            if stage < API:
                await self._handshake_within_deadline(stage)
            else:
                await self._drain()  # as after the start-up burst: a client not reading holds us here
            await self._serve_requests()
        except asyncio.CancelledError:
            cause = self.drop_cause or "mock shutting down"
            raise
        except Exception as error:  # a refusal, bad bytes, a lost client, or a mock bug: this connection alone ends
            cause = self._cause_of(error)
        finally:
            unsent = self._end(cause)
            if unsent is not None:
                await self._wait_closed(unsent)

    def _cause_of(self, exc: Exception) -> str:
        """The close cause an ending exception gives, with the line it gets."""
        if isinstance(exc, ConnectionClosed):
            if isinstance(exc, Refused):
                log.warning("conn %d from %s closed: %s", self.record.conn_id, self.record.peer, exc)
            return str(exc)
        if isinstance(exc, ProtocolError):
            cause = f"protocol error: {exc}"
            log.warning("conn %d from %s closed: %s", self.record.conn_id, self.record.peer, cause)
            return cause
        if isinstance(exc, (ConnectionError, asyncio.IncompleteReadError)):
            return f"client connection lost: {type(exc).__name__}"
        log.error("conn %d: internal error", self.record.conn_id, exc_info=exc)
        return f"internal error: {type(exc).__name__}: {exc}"

    def _end(self, cause: str) -> int | None:
        """Close the record with its cause and line, and the connection:
        the bytes still unsent when the socket was closed (the coroutine
        waits for them, bounded), None when a fault keeps it open."""
        self.record.close(cause)
        # A routine close (the client's, the mock's own stop) is rate-bounded
        # (connlog.py); any other cause gets its line.
        level = self.gw.connlog.level(started=False) if cause in _ROUTINE_CLOSES else logging.INFO
        if level and log.isEnabledFor(level):
            log.log(level, "conn %d closed: %s", self.record.conn_id, cause)
        self._flush()  # what a refused request had answered before the refusal still goes out
        for task in self._later:
            task.cancel()
        if self.holds_client_id and self.client_id is not None:
            self.gw._release_client_id(self.client_id, self)
            self.holds_client_id = False
        if self.gw.wedged is not None and self.drop_cause is None:
            # A wedged API never closes anything: the socket stays until restart.
            self.gw.unread.append(self.writer if self.writer is not None else self.transport)
            return None
        if self.record.started_api and self.drop_cause is None:
            self.gw.note_api_session_end()
        left_open = self.gw.faults.on_client_close(self)
        if left_open:  # a fault keeps our side open (close-wait-leak)
            self.record.close_cause = f"{self.record.close_cause}; {left_open}"
            return None
        unsent = self.transport.get_write_buffer_size()
        self.transport.close()
        return unsent

    async def _wait_closed(self, unsent: int) -> None:
        if self.writer is None:
            return
        try:
            if unsent:  # the close waits for the client to read: bounded
                await asyncio.wait_for(self.writer.wait_closed(), timeout=1.0)
            else:  # nothing to flush: the transport closes on the next loop turn (no task, no timer)
                await self.writer.wait_closed()
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass

    def wedge(self) -> None:
        """The API thread wedged (fault api-wedge): stop reading this
        client and answering it; what it sends stays unread in Recv-Q."""
        self.transport.pause_reading()

    # ------------------------------------------------------------ reading

    async def _read_some(self) -> None:
        assert self.reader is not None  # the coroutine runs with its streams
        if self.gw.idle_timeout:
            data = await self._idle(self.reader.read(READ_CHUNK), "no bytes from the client")
        else:  # the default: no wrapper coroutine per read
            data = await self.reader.read(READ_CHUNK)
        if not data:
            self.client_eof = True
            self.frames.finish()  # raises if the stream ended mid-frame
            raise ConnectionClosed("client closed the connection")
        self.pending.extend(self.frames.feed(data))

    async def _next_frame(self) -> bytes:
        while not self.pending:
            await self._read_some()
        return self.pending.pop(0)

    async def _idle(self, read: Awaitable[T], what: str) -> T:
        """Await a read or a drain, bounded by the gateway's idle_timeout.

        Off by default: a real Gateway keeps an idle client forever. When
        set, a client that sends nothing (idle or half-open) or reads
        nothing (its replies pile up) for that long is closed with a cause.
        """
        timeout = self.gw.idle_timeout
        if not timeout:
            return await read
        try:
            return await asyncio.wait_for(read, timeout)
        except TimeoutError:
            raise ConnectionClosed(f"idle timeout: {what} for {timeout:g} s") from None

    async def _drain(self) -> None:
        """drain() stops us (and so our reading) while the client's unread
        replies exceed the write high-water mark: the client, not the mock,
        then holds the backlog (in the kernel's socket buffers)."""
        self._flush()
        assert self.writer is not None  # the coroutine runs with its streams
        if not self.gw.idle_timeout:
            await self.writer.drain()
            return
        await self._idle(self.writer.drain(), "client read nothing (write buffer full)")

    async def _read_prefix(self) -> None:
        got = b""
        assert self.reader is not None  # the coroutine runs with its streams
        while len(got) < len(API_PREFIX):
            read = self.reader.read(len(API_PREFIX) - len(got))
            chunk = await (self._idle(read, "no bytes from the client") if self.gw.idle_timeout else read)
            if not chunk:
                raise ConnectionClosed("client closed before sending API\\0" if not got
                                       else "client closed inside the API\\0 prefix")
            got += chunk
            check_prefix(got)

    # ------------------------------------------------------------ handshake

    async def _handshake_within_deadline(self, stage: int = PREFIX) -> None:
        """The handshake, bounded by the gateway's handshake_timeout (from
        accept to startApi; gateway.DEFAULT_HANDSHAKE_TIMEOUT says why). A
        handshake the callback path handed over keeps what is left of it."""
        deadline = getattr(self.gw, "handshake_timeout", None)
        if deadline is None:
            await self._handshake(stage)
            return
        left = deadline if self.conn is None else deadline - (time.monotonic() - self.record.accepted_at)
        try:
            async with asyncio.timeout(left) as self._deadline:
                await self._handshake(stage)
        except TimeoutError:
            raise Refused(f"handshake deadline: no startApi within {deadline:g} s of accept") from None

    async def _handshake(self, stage: int = PREFIX) -> None:
        """From `stage` on: the API\\0 prefix, the version exchange, then
        startApi and the start-up burst. The steps that need no waiting are
        the methods below, which the callback path (accept.py) calls too."""
        if stage == PREFIX:
            await self._read_prefix()
        if stage <= HELLO:
            blocked = self._answer_hello(await self._next_frame())
            if blocked:
                await self._swallow_until_eof()
                raise ConnectionClosed(f"handshake left unanswered: {blocked}")
            await self._drain()
        # Nothing more until startApi: the official client drops anything
        # that shares a segment with the version reply.
        while True:
            try:
                frame = await self._next_frame()
            except ConnectionClosed:
                if self._out_of_range:
                    raise ConnectionClosed(f"{self._out_of_range}: replied with {self.server_version}, "
                                           "the client closed") from None
                raise
            request = self._before_start_api(frame)
            if request is not None:
                break
        in_use = self._start_api(request)
        await self._drain()
        if in_use:
            raise ConnectionClosed(in_use)

    def _answer_hello(self, payload: bytes) -> str | None:
        """The client's version range: recorded, then answered with the
        negotiated version (written); or why the handshake must go
        unanswered (a fault, a red API), with nothing written."""
        hello = parse_hello(payload)
        self.record.client_range = (hello.min_version, hello.max_version)
        self.record.add_hello(payload)
        profile = self.gw.profile
        blocked = self.gw.handshake_blocked()
        if blocked:
            return blocked
        supported = self.gw.effective_max_server_version
        version = min(supported, hello.max_version)
        if version < hello.min_version:
            # A real Gateway answers with its own version and leaves the
            # verdict to the client (the official clients raise 506
            # "Unsupported version", ib_async and rust-ibapi check their
            # floor after the reply), so the client, not the mock, closes.
            version = supported
            self._out_of_range = (f"client needs server version >= {hello.min_version}, this Gateway supports at "
                                  f"most {supported}")
            log.info("conn %d: %s; replying with %d for the client to judge", self.record.conn_id,
                     self._out_of_range, version)
            named = getattr(self.responder, "out_of_range", None)  # a replay names the recorded versions
            if named is not None:
                named(hello.min_version, hello.max_version, version)
        self.server_version = version
        self.record.server_version = version
        self._write(_server_hello(version, profile.time_zone, profile.iana_zone), server_hello=True)
        return None

    def _before_start_api(self, frame: bytes) -> Message | None:
        """A frame after the version reply: startApi's request, or None
        (anything else before startApi is recorded and ignored)."""
        request, _form, _fields = self._decode(frame)
        self.record.add_request(frame)
        if request.msg_id == Out.START_API:
            return request
        log.info("conn %d: %s before startApi ignored", self.record.conn_id, request.name)
        return None

    def _start_api(self, request: Message) -> str | None:
        """startApi: the client id claimed and the start-up burst built
        (flushed by the caller, as one write); raises when the connection
        is refused; the close cause when the id is in use (error 326
        written, the caller closes after flushing it)."""
        self.client_id = self._java_int(request, "client_id")
        self.record.client_id = self.client_id
        if self._deadline is not None:
            self._deadline.reschedule(None)  # the hello is done; what follows is API time
        bare_close = self.gw.closes_after_start_api()
        if bare_close:
            raise ConnectionClosed(bare_close)
        if not self.gw._admit_api_client(self):
            raise Refused(f"connection cap of {self.gw.effective_max_clients} clients reached")
        if not self.gw._claim_client_id(self.client_id, self):
            self._send(m.error(self.server_version, -1, *CLIENT_ID_IN_USE, error_time_ms=_now_ms()))
            return f"client id {self.client_id} already in use (326)"
        self.holds_client_id = True
        self.record.started_api = True
        level = self.gw.connlog.level(started=True)
        if level:
            log.log(level, "conn %d from %s: client id %d started the API at server version %d", self.record.conn_id,
                    self.record.peer, self.client_id, self.server_version)
        if self.responder is not None:
            self.responder.start()
        else:
            self._out = []  # the start-up burst leaves in one write
            self._send_startup()
        return None

    async def _swallow_until_eof(self) -> None:
        """Read and drop whatever the client sends until it gives up: what a
        client sees from a Gateway whose API layer is not answering."""
        assert self.reader is not None  # the coroutine runs with its streams
        while await self._idle(self.reader.read(READ_CHUNK), "no bytes from the client"):
            pass
        self.client_eof = True

    def _send_startup(self) -> None:
        gw = self.gw
        if gw.faults.objects or gw.in_outage or gw.wedged is not None or self.server_version >= ERROR_TIME:
            self._send_startup_each()
            return
        # Nothing changes the burst but what the key names: the same bytes
        # and transcript entries for every connection, made once.
        profile = gw.profile
        key = (self.reply_model.name, self.server_version, profile.accounts_first, profile.farm_notices,
               tuple(gw.model.account_ids), gw.model.next_order_id)
        burst = _BURSTS.get(key)
        if burst is None:
            accounts = m.managed_accounts(gw.model.account_ids)
            next_id = m.next_valid_id(gw.model.next_order_id)
            ordered = (accounts, next_id) if profile.accounts_first else (next_id, accounts)
            hits = [self._encoded(fields, Out.START_API) for fields in ordered]
            hits += [self._encoded(m.error(self.server_version, -1, code, text)) for code, text in profile.farm_notices]
            burst = ([sent_entry(*hit) for hit in hits], b"".join(hit[0] for hit in hits))
            if len(_BURSTS) < _BURSTS_MAX:
                _BURSTS[key] = burst
        self.record.add_entries(burst[0])
        self._emit(burst[1])

    def _send_startup_each(self) -> None:
        """The start-up burst message by message: what a fault (a delay, a
        withheld message, a changed farm notice) or an outage changes."""
        profile, faults = self.gw.profile, self.gw.faults
        accounts = m.managed_accounts(self.gw.model.account_ids)
        next_id = None if faults.withholds(In.NEXT_VALID_ID) else m.next_valid_id(self.gw.model.next_order_id)
        ordered = (accounts, next_id) if profile.accounts_first else (next_id, accounts)
        for fields in ordered:
            if fields is None:
                continue
            delay = faults.startup_delay(In.MANAGED_ACCTS if fields is accounts else In.NEXT_VALID_ID)
            if delay:
                self._send_later(delay, fields, Out.START_API)
            else:
                self._send_cached(fields, Out.START_API)
        for code, text in profile.farm_notices:
            if self.gw.in_outage and code in (2104, 2106):
                code, text = FARMS_BROKEN[0] if code == 2104 else FARMS_BROKEN[1]
            code, text = faults.farm_notice(code, text)
            if self.server_version < ERROR_TIME:  # no time field: the same bytes every time
                self._send_cached(m.error(self.server_version, -1, code, text))
            else:
                self._send(m.error(self.server_version, -1, code, text, error_time_ms=_now_ms()))
        if self.gw.in_outage:
            self._send(m.error(self.server_version, -1, *CONNECTIVITY_LOST, error_time_ms=_now_ms()))

    def _send_later(self, delay: float, fields: list[Field], origin: int | None = None) -> None:
        async def later() -> None:
            await asyncio.sleep(delay)  # the fault's injected delay
            self._send(fields, origin)
            await self._drain()

        task = asyncio.create_task(later())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    def notify_outage_start(self) -> None:
        if self.record.started_api:
            self._send(m.error(self.server_version, -1, *CONNECTIVITY_LOST, error_time_ms=_now_ms()))
            for code, text in FARMS_BROKEN:
                self._send(m.error(self.server_version, -1, code, text, error_time_ms=_now_ms()))

    def notify(self, code: int, text: str) -> None:
        """A system message (reqId -1) to a client whose API is started."""
        if self.record.started_api:
            self._send(m.error(self.server_version, -1, code, text, error_time_ms=_now_ms()))

    def notify_outage_end(self) -> None:
        if self.record.started_api:
            self._send(m.error(self.server_version, -1, *CONNECTIVITY_RESTORED, error_time_ms=_now_ms()))
            for code, text in self.gw.profile.farm_notices[:2]:
                self._send(m.error(self.server_version, -1, code, text, error_time_ms=_now_ms()))

    def _ends(self, kind: str) -> bool:
        """False when a fault (missing-end) swallows this kind's end message."""
        return not self.gw.faults.withholds(END_MESSAGES[kind])

    # ------------------------------------------------------------ requests

    async def _serve_requests(self) -> None:
        while True:
            if lean.ready(self):
                await lean.serve(self)  # until a fault, backpressure or the end needs this loop
                await self._drain()  # as after every answer: a client that stopped reading holds us here
                continue
            payload = await self._next_frame()
            request, form, fields = self._decode(payload)
            self.record.add_request(payload)
            faults = self.gw.faults
            latency = faults.reply_delay(self.gw.jitter) if faults.objects else None
            if latency is not None:
                await asyncio.sleep(latency)  # injected latency
            self._answer(request, fields, payload)
            await self._drain()

    def _answer(self, request: Message, fields: list[str], payload: bytes) -> None:
        """One decoded request's answer, into the open burst: the same code
        whether the request came through the coroutine or lean.py."""
        handler = self._handlers.get(request.msg_id)
        if handler is None and self.desk is None and self.responder is None:
            requests_market.install(self)
            handler = self._handlers.get(request.msg_id)
        if request.msg_id in m.ORDER_MESSAGES:
            self._on_order_message(request, order_id_of(self.server_version, payload))
        elif self.responder is not None:
            self.responder.answer(request, fields)
        elif handler is None:
            if log.isEnabledFor(logging.INFO):
                log.info("conn %d: unhandled %s (%s) ignored", self.record.conn_id, request.name,
                         "|".join(fields[:6]))
        else:
            self._origin = request.msg_id  # replies take the form of this request's family
            self._out = []  # a multi-message answer leaves in one write
            try:
                handler(request)
            finally:
                self._origin = None

    def _decode(self, payload: bytes) -> tuple[Message, Form, list[str]]:
        """decode_client_frame, remembered for the requests that carry no
        field of their own (reqCurrentTime, reqManagedAccts, ...): a client
        sends the same bytes every time, so their decode is made once per
        server version. Everything else (and every malformed frame, which
        raises) is decoded afresh."""
        decoded = _DECODED.get((self.server_version, payload))
        if decoded is not None:
            return decoded
        decoded = decode_client_frame(self.server_version, payload)
        if decoded[0].msg_id in _FIELDLESS and len(_DECODED) < _DECODED_MAX:
            _DECODED[(self.server_version, payload)] = decoded
        return decoded

    def _ignore(self, request: Message) -> None:
        """Requests with no reply on a real Gateway (cancels, settings)."""

    def _java_int(self, request: Message, key: str, default: int = 0) -> int:
        """A client's integer field, read as the Gateway reads a Java int.
        Anything else (a 4,300-digit count, 1e9, 2^31) refuses the request,
        which closes this connection before shared state (the order-id
        sequence) changes."""
        value = request.fields.get(key, "")
        if value in ("", None):
            return default
        text = str(value)
        if _JAVA_INT_TEXT.fullmatch(text) and len(text.lstrip("+-").lstrip("0")) <= 10:
            number = int(text)
            if JAVA_INT_MIN <= number <= JAVA_INT_MAX:
                return number
        shown = text if len(text) <= 24 else f"{text[:12]}...({len(text)} chars)"
        raise Refused(f"{request.name}: {key}={shown!r} is not a Java int; request refused")

    def _on_req_ids(self, request: Message) -> None:
        try:
            first = self.gw.model.allocate_ids(self._java_int(request, "num_ids", 1), limit=JAVA_INT_MAX)
        except ValueError as exc:
            raise Refused(f"{request.name}: {exc}; request refused") from None
        if not self.gw.faults.withholds(In.NEXT_VALID_ID):
            self._send(m.next_valid_id(first))

    def _on_req_managed_accts(self, request: Message) -> None:
        self._send(m.managed_accounts(self.gw.model.account_ids))

    def _on_req_current_time(self, request: Message) -> None:
        now = int(time.time())
        if self.server_version >= PROTOBUF:  # binary id or protobuf: the reply model decides
            self._send(m.current_time(now))
            return
        reply = _CURRENT_TIME.get(self.server_version)
        if reply is None or reply[0] != now:  # the text era's bytes, made once a second
            reply = _CURRENT_TIME[self.server_version] = (now, encode_message(m.current_time(now)))
        self._write(reply[1], msg_id=In.CURRENT_TIME)

    def _on_req_current_time_millis(self, request: Message) -> None:
        if self.server_version >= CURRENT_TIME_IN_MILLIS:
            self._send(m.current_time_in_millis(_now_ms()))

    def _on_req_positions(self, request: Message) -> None:
        for account in self.gw.model.accounts:
            for h in account.holdings:
                self._send(m.position(account.account_id, h.contract, m.quantity_text(h.quantity), h.avg_cost))
        if self._ends("positions"):
            self._send(m.position_end())

    def _read_only_refusal(self) -> bool:
        """Fault read-only-api: a read-only Gateway answers an order-related
        request with 321 "...Read-Only mode." at reqId -1 and nothing else
        (bankroll-py/bankroll#65); True when it did."""
        if not self.gw.faults.read_only():
            return False
        self._send(m.error(self.server_version, -1, *READ_ONLY, error_time_ms=_now_ms()))
        return True

    def _on_req_open_orders(self, request: Message) -> None:
        if self._read_only_refusal():
            return
        if self._ends("open-orders"):
            self._send(m.open_order_end())  # the model holds no working orders

    def _on_req_auto_open_orders(self, request: Message) -> None:
        self._read_only_refusal()  # otherwise no reply: it only binds future manual orders

    def _on_req_completed_orders(self, request: Message) -> None:
        if self.gw.faults.read_only():
            return  # no answer at all: the request times out (erdewit/ib_insync#224)
        if self._ends("completed-orders"):
            self._send(m.completed_orders_end())

    def _on_req_account_updates(self, request: Message) -> None:
        if request.fields.get("subscribe") not in ("1", "true", "True"):
            return  # unsubscribe has no reply
        account_id = request.fields.get("account", "") or self.gw.model.account_ids[0]
        account = self.gw.model.get(account_id)
        if account is None:
            self._send(m.error(self.server_version, -1, *UNKNOWN_ACCOUNT, error_time_ms=_now_ms()))
            return
        for key, value, currency in account.account_values():
            self._send(m.account_value(key, value, currency, account.account_id))
        for h in account.holdings:
            self._send(m.portfolio_value(h.contract, m.quantity_text(h.quantity), h.market_price, h.market_value,
                                         h.avg_cost, h.unrealized_pnl, 0.0, account.account_id))
        self._send(m.account_time(time.strftime("%H:%M")))
        if self._ends("account"):
            self._send(m.account_download_end(account.account_id))

    def _on_req_account_updates_multi(self, request: Message) -> None:
        req_id = self._java_int(request, "req_id")
        wanted = request.fields.get("account", "")
        model_code = request.fields.get("model_code", "")
        accounts = [a for a in self.gw.model.accounts if wanted in ("", "All", a.account_id)]
        for account in accounts:
            for key, value, currency in account.account_values():
                self._send(m.account_update_multi(req_id, account.account_id, model_code, key, value, currency))
        if self._ends("account-multi"):
            self._send(m.account_update_multi_end(req_id))

    def _on_req_account_summary(self, request: Message) -> None:
        req_id = self._java_int(request, "req_id")
        tags = [t for t in request.fields.get("tags", "").split(",") if t]
        for account in self.gw.model.accounts:
            for tag, value, currency in account.summary(tags):
                self._send(m.account_summary(req_id, account.account_id, tag, value, currency))
        if self._ends("account-summary"):
            self._send(m.account_summary_end(req_id))

    def _on_req_executions(self, request: Message) -> None:
        req_id = self._java_int(request, "req_id")
        wanted_account = request.fields.get("account", "")
        for account in self.gw.model.accounts:
            if wanted_account and wanted_account != account.account_id:
                continue
            for execution in account.executions:
                self._send(m.exec_details(self.server_version, req_id, execution))
                self._send(requests_market.commission_report(execution))  # as a Gateway follows each fill
        if self._ends("executions"):
            self._send(m.exec_details_end(req_id))

    def _on_order_message(self, request: Message, order_id: int) -> None:
        """Refused as a Gateway refuses it: an error carrying the order's id
        (-1 for reqGlobalCancel), so the client's bookkeeping closes the order."""
        if not JAVA_INT_MIN <= order_id <= JAVA_INT_MAX:
            digits = len(str(abs(order_id)))  # order_id_of read at most int()'s 4,300 digits
            raise Refused(f"{request.name}: order id of {digits} digits is not a Java int; request refused")
        read_only = self.gw.faults.read_only()
        refusal = READ_ONLY if read_only else NOT_EXECUTED
        replay_refusal = getattr(self.responder, "order_refusal", None)  # a replay says why it has no answer
        if replay_refusal is not None:
            refusal = replay_refusal(request, order_id)
        log.warning("conn %d: refused %s id %d (%s)", self.record.conn_id, request.name, order_id,
                    "Read-Only API" if read_only else "the mock never executes orders")
        self._send(m.error(self.server_version, order_id, *refusal, error_time_ms=_now_ms()))

    # ------------------------------------------------------------ writing

    def _send(self, fields: list[Field], origin: int | None = None) -> None:
        """The one send path of every reply and notice, in both eras: the
        profile's reply model picks text, text with a binary id or protobuf
        from the negotiated version and the request the reply answers
        (origin; default the request being handled)."""
        origin = self._origin if origin is None else origin
        msg_id = int(fields[0])  # type: ignore[arg-type]
        form = self.reply_model.reply_form(self.server_version, msg_id, origin)
        if form is Form.TEXT:  # the text era: no transcript fields made, the bytes are the record
            self._write(encode_message(fields), msg_id=msg_id)
            return
        payload, shown = encode_in_form(form, self.server_version, fields, from_client=False)
        self._write(payload, form.value, msg_id, shown if form is Form.PROTOBUF else None)

    def _send_cached(self, fields: list[Field], origin: int | None = None) -> None:
        """_send for a message whose bytes repeat from connection to
        connection (the start-up burst: nextValidId, managedAccounts, the
        farm notices): encoded once per server version, reply model and
        request, then the same bytes (and transcript entry) every time."""
        self._write(*self._encoded(fields, origin))

    def _encoded(self, fields: list[Field], origin: int | None = None) -> tuple[bytes, str, int, list[str] | None]:
        """_send_cached's encoding: (bytes, form, message id, shown fields), from the cache."""
        origin = self._origin if origin is None else origin
        key = (self.reply_model.name, self.server_version, origin, *fields)
        hit = _ENCODED.get(key)
        if hit is None:
            msg_id = int(fields[0])  # type: ignore[arg-type]
            form = self.reply_model.reply_form(self.server_version, msg_id, origin)
            if form is Form.TEXT:
                hit = (encode_message(fields), form.value, msg_id, None)
            else:
                payload, shown = encode_in_form(form, self.server_version, fields, from_client=False)
                hit = (payload, form.value, msg_id, shown if form is Form.PROTOBUF else None)
            if len(_ENCODED) < _ENCODED_MAX:
                _ENCODED[key] = hit
        return hit

    def _send_raw(self, data: bytes, fields: list[str], name: str | None = None, form: str = "text") -> None:
        """Bytes someone else encoded (a replay), recorded with their shown fields."""
        if self.gw.wedged is not None:
            return  # a wedged API answers nothing (fault api-wedge)
        self.record.add("send", fields, name, form=form)
        self._emit(data)

    def _write(self, data: bytes, form: str = "text", msg_id: int = 0, shown: list[str] | None = None,
               server_hello: bool = False) -> None:
        if self.gw.wedged is not None:
            return  # a wedged API answers nothing (fault api-wedge)
        self.record.add_sent(data, form, msg_id, shown, server_hello)
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        """Into the open burst (flushed as one write by _drain), or straight out."""
        if self._out is not None:
            self._out.append(data)
        else:
            self.transport.write(data)

    def _flush(self) -> None:
        out, self._out = self._out, None
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- what repeats from connection to connection

# Client requests with no field of their own, whose decode is remembered per
# (server version, payload) (Session._decode); bounded, so a client varying
# the bytes cannot grow it.
_FIELDLESS = frozenset({Out.REQ_CURRENT_TIME, Out.REQ_CURRENT_TIME_IN_MILLIS, Out.REQ_MANAGED_ACCTS,
                        Out.REQ_POSITIONS, Out.CANCEL_POSITIONS, Out.REQ_OPEN_ORDERS, Out.REQ_ALL_OPEN_ORDERS})
_DECODED_MAX = 256
_DECODED: dict[tuple[int, bytes], tuple[Message, Form, list[str]]] = {}
# Encoded start-up messages (Session._send_cached), bounded the same way.
_ENCODED_MAX = 1024
_ENCODED: dict[tuple[object, ...], tuple[bytes, str, int, list[str] | None]] = {}
# Whole start-up bursts (Session._send_startup): their transcript entries and bytes.
_BURSTS_MAX = 64
_BURSTS: dict[tuple[object, ...], tuple[list[tuple[int, int, bytes]], bytes]] = {}
# The text-era currentTime reply of the current second, per server version.
_CURRENT_TIME: dict[int, tuple[int, bytes]] = {}
_HELLO: dict[tuple[int, str, str], tuple[int, bytes]] = {}


def _server_hello(version: int, zone_name: str, iana_zone: str) -> bytes:
    """The version reply (version, connection time): the same bytes for
    every connection within one second, so formatted once a second."""
    now = int(time.time())
    key = (version, zone_name, iana_zone)
    hit = _HELLO.get(key)
    if hit is None or hit[0] != now:
        when = datetime.fromtimestamp(now, timezone.utc)
        hit = (now, encode_server_hello(version, format_connection_time(when, zone_name=zone_name,
                                                                         iana_zone=iana_zone)))
        if len(_HELLO) > 64:
            _HELLO.clear()
        _HELLO[key] = hit
    return hit[1]
