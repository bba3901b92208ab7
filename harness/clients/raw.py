"""The harness's own client, on its own codec.

Why it exists next to the real libraries: it sees every byte, offers any
version range, and times each handshake phase separately (TCP, version
reply, nextValidId, managedAccounts, first account value), which is exactly
what an on-call engineer needs when a real client only says "timeout".
It is read-only by construction: it refuses to send order messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version as dist_version

from ..core.constants import CLIENT_ID_IN_USE
from ..core.redact import remember_accounts
from ..protocol import messages as m
from ..protocol.era import Form
from ..protocol.errors import ProtocolError
from ..protocol.framing import Field, FrameReader
from ..protocol.handshake import exchange_versions, start_api_frame
from ..protocol.messages import In, Message
from ..protocol.peer import SNIFF_BYTES, identify_peer, non_tws_cause
from ..protocol.versions import PROTOCOL_MAX
from ..protocol.wire import decode_server_frame, encode_in_form, encode_request
from .base import (
    PHASE_API_READY,
    PHASE_FIRST_ACCOUNT_VALUE,
    PHASE_MANAGED_ACCOUNTS,
    PHASE_NEXT_VALID_ID,
    PHASE_SERVER_VERSION,
    PHASE_TCP,
    AccountSnapshot,
    AccountValue,
    AdapterEvents,
    ClientInfo,
    ConnectResult,
    GatewayMessage,
    HandshakeError,
    PhaseClock,
    Position,
)

# The modern official client's range (ibapi-stable 10.50: v100..226): what
# a real Gateway is asked for by the library most users run. Past 200 the
# raw client speaks binary ids and protobuf exactly as that client does
# (protocol/era.py request_form), so its frames match the official ones.
DEFAULT_MIN_VERSION = 100
DEFAULT_MAX_VERSION = PROTOCOL_MAX


class OrderRefused(Exception):
    """The raw client never sends a message that could change an account."""


class RawClient:
    """Read-only TWS API client over asyncio streams.

    One background task reads frames and hands each decoded message to the
    waiters registered with `_expect`, so every wait is an event wait with a
    timeout, never a sleep.
    """

    def __init__(self, min_version: int = DEFAULT_MIN_VERSION, max_version: int = DEFAULT_MAX_VERSION,
                 *, connect_options: str = "", await_account_value: bool = True) -> None:
        if not 100 <= min_version <= max_version <= PROTOCOL_MAX:
            raise ValueError(f"version range v{min_version}..{max_version} is outside what the codec speaks "
                             f"(100..{PROTOCOL_MAX})")
        self.info = ClientInfo("raw", "ibgw-harness", _own_version(), min_version, max_version)
        self.connect_options = connect_options
        self.await_account_value = await_account_value
        self.server_version = 0
        self.accounts: list[str] = []
        self.next_valid_id: int | None = None
        self.messages: list[GatewayMessage] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[Callable[[Message], bool], asyncio.Future[Message]]] = []
        self._listeners: list[Callable[[Message], None]] = []
        self.events = AdapterEvents()
        self._closed = self.events.closed  # one event: the read loop's EOF is the link's close
        self._close_cause = ""
        self._next_req_id = 1_000
        self._account_values: list[AccountValue] = []
        self._portfolio_items = 0
        self._download_end: list[str] = []
        self._downloading: set[str] = set()  # accounts whose update stream this client opened
        self._clock = PhaseClock()  # replaced by each connect attempt's clock

    # ------------------------------------------------------------ connect

    async def connect(self, host: str, port: int, client_id: int, *, timeout: float = 10.0,
                      readonly: bool = True) -> ConnectResult:
        clock = PhaseClock()
        result = ConnectResult(self.info, host, port, client_id, readonly, phases=clock.phases,
                               messages=self.messages)
        phase = PHASE_TCP
        try:
            async with asyncio.timeout(timeout):
                self._reader, self._writer = await asyncio.open_connection(host, port)
                clock.mark(PHASE_TCP)
                phase = PHASE_SERVER_VERSION
                first = b""  # the peer's first bytes: a wrong port is named from them

                def sniff(data: bytes) -> None:
                    nonlocal first
                    first = (first + data)[:SNIFF_BYTES]
                    peer = identify_peer(first)
                    if peer is not None:
                        raise ConnectionError(non_tws_cause(peer, first))

                try:
                    reply = await exchange_versions(self._reader, self._writer,
                                                    self.info.min_version or DEFAULT_MIN_VERSION,
                                                    self.info.max_version or DEFAULT_MAX_VERSION,
                                                    self.connect_options, sniff=sniff)
                except ProtocolError as exc:  # not a version reply: name the protocol when the bytes tell
                    raise ConnectionError(non_tws_cause(identify_peer(first) or "an unknown protocol", first)
                                          + f": {exc}") from None
                self.server_version, result.connection_time = reply.server_version, reply.connection_time
                frames, pending = reply.frames, reply.pending
                result.server_version = self.server_version
                clock.mark(PHASE_SERVER_VERSION)
                low, high = self.info.min_version or DEFAULT_MIN_VERSION, self.info.max_version or PROTOCOL_MAX
                if not low <= self.server_version <= high:
                    # What the official clients do with a reply outside their
                    # range: refuse it themselves (506 "Unsupported version").
                    raise ConnectionError(version_out_of_range(self.server_version, low, high, "this client"))
                phase = PHASE_NEXT_VALID_ID
                self._read_task = asyncio.create_task(self._read_loop(frames, pending))
                ready = self._expect_handshake(clock)
                self._writer.write(start_api_frame(client_id, self.server_version))  # text, binary id or protobuf
                await ready
                result.next_valid_id = self.next_valid_id
                result.accounts = list(self.accounts)
                clock.mark(PHASE_API_READY)
                if self.await_account_value:
                    phase = PHASE_FIRST_ACCOUNT_VALUE
                    first_value = self._expect(lambda msg: msg.msg_id == In.ACCT_VALUE)
                    self._send_expecting(m.req_account_updates(True, self.accounts[0]), first_value)
                    self._downloading.add(self.accounts[0])
                    await first_value
                    clock.mark(PHASE_FIRST_ACCOUNT_VALUE)
        except asyncio.CancelledError:
            # Cancelled from outside (Ctrl-C in the probe): never leave the socket open.
            await asyncio.shield(self.disconnect())
            raise
        except TimeoutError:
            await self.disconnect()
            raise self._failure(result, phase, f"no answer within {timeout:g} s") from None
        except (OSError, ConnectionError, ProtocolError) as exc:
            cause = self._close_cause or _describe(exc)  # before disconnect() records its own cause
            await self.disconnect()
            raise self._failure(result, phase, cause) from None
        result.ok = True
        return result

    def _failure(self, result: ConnectResult, phase: str, cause: str) -> HandshakeError:
        """Fill the result with what did arrive and name the phase that did not:
        nextValidId without accounts is a managedAccounts stall."""
        result.next_valid_id = self.next_valid_id
        result.accounts = list(self.accounts)
        if phase == PHASE_NEXT_VALID_ID and self.next_valid_id is not None:
            phase = PHASE_MANAGED_ACCOUNTS
        result.failed_phase, result.error = phase, cause
        return HandshakeError(phase, cause, result)

    async def _expect_handshake(self, clock: PhaseClock) -> None:
        """Wait for nextValidId and a non-empty managedAccounts, in either order."""
        self._clock = clock
        got_id = self._expect(lambda msg: msg.msg_id == In.NEXT_VALID_ID)
        got_accounts = self._expect(lambda msg: msg.msg_id == In.MANAGED_ACCTS and bool(self.accounts))
        try:
            await got_id
            await got_accounts
        except BaseException:
            got_accounts.cancel()
            raise

    # ------------------------------------------------------------ reading

    async def _read_loop(self, frames: FrameReader, pending: list[bytes]) -> None:
        assert self._reader is not None
        try:
            while True:
                for payload in pending:
                    self._dispatch(decode_server_frame(self.server_version, payload)[0])
                data = await self._reader.read(65536)
                if not data:
                    frames.finish()
                    raise ConnectionError("the Gateway closed the connection")
                pending = frames.feed(data)
        except (OSError, ConnectionError, ProtocolError) as exc:
            self._fail_all(exc)
        except asyncio.CancelledError:
            self._fail_all(ConnectionError("client disconnected"))
            raise

    def _dispatch(self, msg: Message) -> None:
        if msg.msg_id == In.NEXT_VALID_ID:
            self.next_valid_id = msg.int("order_id")
            self._clock.mark(PHASE_NEXT_VALID_ID)
        elif msg.msg_id == In.MANAGED_ACCTS:
            self.accounts = [a for a in msg.fields.get("accounts", "").split(",") if a]
            remember_accounts(self.accounts)  # hidden from every log, report and file from now on
            if self.accounts:
                self._clock.mark(PHASE_MANAGED_ACCOUNTS)
        elif msg.msg_id == In.ERR_MSG:
            self.messages.append(GatewayMessage(msg.int("req_id", -1), msg.int("code"), msg.fields.get("message", ""),
                                                round(time.monotonic() - self._clock.t0, 3)))
            if msg.int("code") == CLIENT_ID_IN_USE:
                self._close_cause = "client id already in use (error 326)"
            self.events.emit_message(self.messages[-1])
        elif msg.msg_id == In.ACCT_VALUE:
            f = msg.fields
            self._account_values.append(AccountValue(f["account"], f["key"], f["value"], f["currency"]))
            self.events.emit_account_value()
        elif msg.msg_id == In.PORTFOLIO_VALUE:
            self._portfolio_items += 1
        elif msg.msg_id == In.ACCT_DOWNLOAD_END:
            self._download_end.append(msg.fields.get("account", ""))
        for listener in list(self._listeners):
            listener(msg)
        for entry in list(self._waiters):
            predicate, future = entry
            if not future.done() and predicate(msg):
                future.set_result(msg)
                self._waiters.remove(entry)

    def _fail_all(self, exc: BaseException) -> None:
        if not self._close_cause:
            self._close_cause = _describe(exc)
        self.events.mark_closed(self._close_cause)
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(ConnectionError(self._close_cause))
        self._waiters.clear()

    def _expect(self, predicate: Callable[[Message], bool]) -> asyncio.Future[Message]:
        """A future resolved by the first incoming message matching predicate."""
        if self._closed.is_set():
            raise ConnectionError(self._close_cause or "not connected")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future

    def _send_expecting(self, fields: list[Field], reply: asyncio.Future[Message]) -> None:
        """Send a request whose reply future is already registered; if the
        send fails, drop the future so no exception is left unretrieved."""
        try:
            self.send(fields)
        except BaseException:
            reply.cancel()
            self._waiters = [w for w in self._waiters if w[1] is not reply]
            raise

    # ------------------------------------------------------------ requests

    def send(self, fields: list[Field]) -> None:
        if self._writer is None or self._closed.is_set():
            raise ConnectionError(self._close_cause or "not connected")
        if int(fields[0]) in m.ORDER_MESSAGES:  # type: ignore[arg-type]
            raise OrderRefused(f"{m.message_name(int(fields[0]), from_client=True)} refused: "  # type: ignore[arg-type]
                               "the harness is read-only")
        self._writer.write(encode_request(self.server_version, fields)[0])

    def send_in_form(self, fields: list[Field], form: Form) -> None:
        """Send a request in an explicit wire form: a protobuf-only request
        (cancelContractData, reqConfig...) or the form a newer client would
        pick. Orders stay refused, as in send()."""
        if self._writer is None or self._closed.is_set():
            raise ConnectionError(self._close_cause or "not connected")
        if int(fields[0]) in m.ORDER_MESSAGES:  # type: ignore[arg-type]
            raise OrderRefused("orders are refused: the harness is read-only")
        self._writer.write(encode_in_form(form, self.server_version, fields, from_client=True)[0])

    def new_req_id(self) -> int:
        self._next_req_id += 1
        return self._next_req_id

    async def collect(self, fields: list[Field], keep: Callable[[Message], bool],
                      until: Callable[[Message], bool], timeout: float) -> list[Message]:
        """Send a request and gather matching replies until its end message."""
        got: list[Message] = []

        def listener(msg: Message) -> None:
            if keep(msg):
                got.append(msg)

        self._listeners.append(listener)
        try:
            end = self._expect(until)
            self._send_expecting(fields, end)
            await asyncio.wait_for(end, timeout)
        finally:
            self._listeners.remove(listener)
        return got

    async def ping(self, timeout: float = 5.0) -> float:
        started = time.monotonic()
        reply = self._expect(lambda msg: msg.msg_id == In.CURRENT_TIME)
        self._send_expecting(m.req_current_time(), reply)
        await asyncio.wait_for(reply, timeout)
        return time.monotonic() - started

    async def account_snapshot(self, timeout: float = 10.0) -> AccountSnapshot:
        """Positions, account download and executions requested together,
        each bounded by `timeout`. An end message that never comes leaves
        its flag False instead of failing the whole snapshot, so the
        evidence names exactly which part of the start-up sync stalled."""
        snap = AccountSnapshot(accounts=list(self.accounts))

        async def positions() -> None:
            msgs = await self.collect(m.req_positions(), lambda msg: msg.msg_id == In.POSITION_DATA,
                                      lambda msg: msg.msg_id == In.POSITION_END, timeout)
            snap.positions_end = True
            for msg in msgs:
                f = msg.fields
                snap.positions.append(Position(f["account"], msg.int("con_id"), f["symbol"], f["sec_type"],
                                               f["currency"], float(f["position"] or 0), float(f["avg_cost"] or 0)))

        async def download(account: str) -> None:
            if account in self._download_end:
                return
            ends = lambda msg: msg.msg_id == In.ACCT_DOWNLOAD_END and msg.fields.get("account") == account  # noqa: E731
            if account in self._downloading:
                # The stream connect() opened is still arriving: wait for its
                # end rather than clearing it and asking again.
                await asyncio.wait_for(self._expect(ends), timeout)
                return
            self._downloading.add(account)
            try:
                await self.collect(m.req_account_updates(True, account), lambda msg: False, ends, timeout)
            finally:
                with contextlib.suppress(ConnectionError):
                    self.send(m.req_account_updates(False, account))
                self._downloading.discard(account)

        async def executions() -> None:
            req_id = self.new_req_id()
            await self.collect(m.req_executions(self.server_version, req_id), lambda msg: False,
                               lambda msg: msg.msg_id == In.EXECUTION_DATA_END and msg.int("req_id") == req_id,
                               timeout)
            snap.executions_end = True

        async def bounded(part: Awaitable[None]) -> None:
            with contextlib.suppress(TimeoutError):  # the missing end shows as a False flag
                await part

        # Account downloads go one account at a time, as a real client must
        # (the Gateway streams one account's updates per connection).
        async def downloads() -> None:
            for account in self.accounts:
                await bounded(download(account))

        await asyncio.gather(bounded(positions()), downloads(), bounded(executions()))
        snap.account_values = list(self._account_values)
        snap.portfolio_items = self._portfolio_items
        snap.account_download_end = list(self._download_end)
        return snap

    # ------------------------------------------------------------ disconnect

    async def abort(self) -> None:
        """Reset the connection (RST, no FIN): what a crashed client or a
        killed network path looks like to the Gateway."""
        if self._writer is not None:
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._writer.transport.abort()
            self._writer = None
        await self.disconnect()

    async def disconnect(self) -> None:
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._read_task
            self._read_task = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError, asyncio.TimeoutError):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
            self._writer = None
        self.events.mark_closed(self._close_cause or "client disconnected")


def version_out_of_range(server_version: int, low: int, high: int, who: str) -> str:
    """The one wording for a version reply outside a client's range; probe
    and doctor read both numbers back from it (VERSION_RANGE_RE)."""
    if server_version < low:
        return (f"the Gateway's maximum server version ({server_version}) is below {who}'s minimum ({low}): "
                "upgrade the Gateway or use an older client")
    return (f"the Gateway's server version ({server_version}) is above {who}'s maximum ({high}): "
            "upgrade the client")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ProtocolError):
        return f"protocol error: {exc}"
    text = str(exc) or type(exc).__name__
    return text


def _own_version() -> str:
    try:
        return dist_version("ibgw-harness")
    except Exception:  # running from a source tree without installing
        from .. import __version__

        return __version__
