"""Adapter over IBKR's official Python client (``ibapi``, 10.x), unmodified.

Why this adapter exists: the official client fails differently from
ib_async. ``EClient.connect`` has no timeout at all: when the Gateway
accepts TCP but never sends the version reply (not logged in, waiting for
2FA, a forwarder in front of a stopped Gateway) it loops forever on 1 s
``recv`` timeouts. The harness must show that behaviour as evidence, bounded,
and without leaking the threads and sockets the library creates.

Threading model (why it looks like this):

* Every ``EClient`` call (``connect``, each request, ``disconnect``) runs on
  one per-connection *call thread*, never on the event loop. ``connect``
  blocks, and even a request is a ``socket.send`` under ibapi's lock with a
  1 s socket timeout; with the mock Gateway in the same process a blocked
  loop would starve the very server the client waits for.
* ``EClient.run`` (the message loop that invokes the wrapper callbacks) runs
  in its own daemon thread, as in every ibapi application; ibapi starts its
  ``EReader`` thread itself inside ``connect``.
* Callbacks take their timestamp on ibapi's thread, then hand the data to
  the event loop with ``loop.call_soon_threadsafe``; all adapter state and
  all asyncio Futures are touched only on the loop thread.
* On a connect timeout the adapter calls ``EClient.disconnect()`` from the
  loop. That closes the socket and clears ``EClient.conn`` (``reset()``), so
  the connect loop's next ``recv`` pass (at most ~1 s later: the socket
  timeout) either sees the closed connection or fails on the cleared
  ``conn``; either way ``connect`` returns and its thread is free. Teardown
  then joins ibapi's ``EReader`` thread (it also exits within ~1 s, when its
  1 s ``recv`` poll on the closed socket returns) and the ``run`` thread, so
  no thread outlives ``disconnect()``.

What each phase timestamp is derived from:

* ``tcp_connect``: ibapi has no callback for it. ``EClient.connect`` logs
  ``"<id> connState: 0 -> 1"`` (DEBUG, logger ``ibapi.client``) right after
  ``Connection.connect()`` returns; that record's time is used. Because
  ``Connection.connect`` swallows a refused connect (the failure only shows
  as error 502 when the hello send fails a moment later), the time counts as
  a TCP connect only if no 502 was reported. To see the record the adapter
  lowers ``ibapi.client`` to DEBUG for the duration of ``connect`` and drops
  the extra records again in a logger filter, so applications and pytest
  see only what they configured. Fallback when the record is not seen
  (``logging.disable``): the ``connectAck`` time, an upper bound; a connect
  that stalls before the version reply is then reported as ``tcp_connect``
  because nothing else distinguishes the two.
* ``server_version``: the ``connectAck`` callback (``serverVersion()`` and
  ``connTime`` give the values).
* ``next_valid_id``: the ``nextValidId`` callback.
* ``managed_accounts``: the first ``managedAccounts`` callback with a
  non-empty account list.
* ``api_ready``: the moment both of the above have arrived; that is when an
  ibapi application may start sending requests.
* ``first_account_value``: the first ``updateAccountValue`` after the
  adapter called ``reqAccountUpdates(True, <first account>)`` (done once
  the API is ready, and left subscribed, as ib_async's start-up does).

``timeout`` is one overall deadline for ``connect`` (ibapi has no timeouts of
its own). Tearing down a stalled connect, and every ``disconnect()``, used to
wait up to ~1 s for ibapi's threads to notice the closed socket (the ``recv``
poll); ``_disconnect_now`` wakes that ``recv`` instead (see there).

Known limit: ibapi's ``socket.connect`` has no timeout. Towards an address
that drops SYNs (not 127.0.0.1), ``connect()`` still raises HandshakeError
(``tcp_connect``) at the deadline, but closing the socket does not interrupt
a blocking ``connect`` on Linux, so the call thread stays until the kernel
gives up (about two minutes); ``lingering_threads`` then names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ibapi import errors as ibapi_errors
from ibapi import server_versions
from ibapi.client import EClient
from ibapi.execution import ExecutionFilter
from ibapi.reader import EReader
from ibapi.wrapper import EWrapper

from ..core.constants import CLIENT_ID_IN_USE as _CLIENT_ID_IN_USE
from ..core.redact import remember_accounts
from ..protocol.messages import Contract
from . import startup  # a trading app's start-up steps (qualify, bars, snapshot, pnl)
from .base import (
    PHASE_API_READY,
    PHASE_FIRST_ACCOUNT_VALUE,
    PHASE_MANAGED_ACCOUNTS,
    PHASE_NEXT_VALID_ID,
    PHASE_SERVER_VERSION,
    PHASE_TCP,
    PHASES,
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

log = logging.getLogger("harness.clients.ibapi")

_CLIENT_LOGGER = "ibapi.client"
# How long teardown waits for ibapi's threads: its sockets use a 1 s timeout,
# so each blocked recv notices a closed socket within about a second.
DRAIN_TIMEOUT = 3.0
# Codes ibapi generates itself (ibapi/errors.py); they never come from the
# Gateway, so they are kept out of ConnectResult.messages.
_LOCAL_CODES: frozenset[int] = frozenset(
    v.code() for v in vars(ibapi_errors).values() if isinstance(v, ibapi_errors.CodeMsgPair)
)
_CONNECT_FAIL = ibapi_errors.CONNECT_FAIL.code()  # 502


def _distribution() -> tuple[str, str]:
    """Which installed distribution provides the ``ibapi`` import package,
    and its version.

    Several do (ibapi-stable, IBKR's own `ibapi` wheel such as 9.81, other
    republished names, a team's vendored copy), and evidence must say which
    build produced it: the distribution that installed the module, else the
    version the module states about itself.
    """
    from ..extras import providing_distribution

    found = providing_distribution("ibapi")
    if found is not None:
        return found
    import ibapi

    stated = getattr(ibapi, "__version__", None)
    if stated is None and isinstance(getattr(ibapi, "VERSION", None), dict):
        stated = ".".join(str(v) for v in ibapi.VERSION.values())
    return "ibapi (no distribution: a local copy)", str(stated or "unknown")


def client_info() -> ClientInfo:
    from ..extras import warn_if_unsupported

    package, version = _distribution()
    warn_if_unsupported("ibapi", version, log)
    return ClientInfo(
        name="ibapi",
        package=package,
        version=version,
        min_version=int(server_versions.MIN_CLIENT_VER),
        max_version=int(server_versions.MAX_CLIENT_VER),
    )


class _Stall(Exception):
    """A handshake phase that cannot complete any more (326, closed socket)."""

    def __init__(self, phase: str, cause: str) -> None:
        super().__init__(cause)
        self.phase = phase
        self.cause = cause


class _LogTap(logging.Filter):
    """Sees ibapi's ``connState`` DEBUG record to time the TCP connect.

    A filter on the originating logger sees each record once before any
    handler and can veto it: the logger is lowered to DEBUG while a connect
    runs and the extra records are dropped, so nothing else sees them.
    Reference counted because adapters may connect concurrently; records are
    matched to an attempt by the ``id(EClient)`` ibapi puts in the message.
    """

    def __init__(self) -> None:
        super().__init__("ibgw-harness-tap")
        self._lock = threading.Lock()
        self._observers: dict[int, _Attempt] = {}
        self._saved_level = logging.NOTSET
        self._threshold = logging.NOTSET

    def acquire(self, app_id: int, attempt: _Attempt) -> None:
        with self._lock:
            self._observers[app_id] = attempt
            if len(self._observers) > 1:
                return
            logger = logging.getLogger(_CLIENT_LOGGER)
            self._saved_level = logger.level
            self._threshold = logger.getEffectiveLevel()
            if self._threshold > logging.DEBUG:
                logger.setLevel(logging.DEBUG)
            logger.addFilter(self)

    def release(self, app_id: int) -> None:
        with self._lock:
            if self._observers.pop(app_id, None) is None or self._observers:
                return
            logger = logging.getLogger(_CLIENT_LOGGER)
            logger.removeFilter(self)
            logger.setLevel(self._saved_level)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.DEBUG and isinstance(record.msg, str):
            key, sep, rest = record.msg.partition(" connState: ")
            if sep and rest.endswith(f"-> {EClient.CONNECTING}") and key.isdigit():
                attempt = self._observers.get(int(key))
                if attempt is not None and attempt.tcp_candidate is None:
                    attempt.tcp_candidate = time.monotonic()
        return record.levelno >= self._threshold


_TAP = _LogTap()


class _Attempt:
    """State of one connection, owned by the event loop thread.

    ``post`` is the only entry point from ibapi's threads.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, result: ConnectResult) -> None:
        self.loop = loop
        self.clock = PhaseClock()
        self.result = result
        self.tcp_candidate: float | None = None  # set by _LogTap on the connect thread
        self.connect_failed = False  # 502 seen
        self.local_errors: list[str] = []
        self.thread_errors: list[str] = []
        self.next_valid_id: int | None = None
        self.next_req_id = 1
        self.accounts: list[str] = []
        self.empty_accounts_seen = False
        self.closed = False
        self.events: AdapterEvents | None = None  # the adapter's, announced on the loop thread
        self.ready: asyncio.Future[float] = loop.create_future()
        self.first_value: asyncio.Future[None] = loop.create_future()
        self.values: dict[tuple[str, str, str], AccountValue] = {}
        self.portfolio: set[tuple[str, int]] = set()
        self.positions: dict[tuple[str, int], Position] = {}
        self.positions_end: asyncio.Future[None] | None = None
        self.download_end: dict[str, asyncio.Future[None]] = {}
        self.exec_end: dict[int, asyncio.Future[None]] = {}
        self.time_waiters: list[asyncio.Future[float]] = []

    # -- crossing from ibapi's threads ---------------------------------------

    def post(self, handler: Callable[..., None], *args: Any) -> None:
        """Run ``handler(t, *args)`` on the loop, t = monotonic time now."""
        try:
            self.loop.call_soon_threadsafe(handler, time.monotonic(), *args)
        except RuntimeError:  # loop already closed: nobody is waiting any more
            pass

    def mark_at(self, phase: str, t: float) -> None:
        self.clock.phases.setdefault(phase, round(t - self.clock.t0, 6))

    # -- handlers, loop thread ------------------------------------------------

    def on_connect_ack(self, t: float) -> None:
        self.mark_at(PHASE_SERVER_VERSION, t)

    def on_next_valid_id(self, t: float, order_id: int) -> None:
        if self.next_valid_id is None:
            self.next_valid_id = order_id
            self.mark_at(PHASE_NEXT_VALID_ID, t)
        self.next_req_id = max(self.next_req_id, order_id)
        self._check_ready(t)

    def on_managed_accounts(self, t: float, accounts: list[str]) -> None:
        remember_accounts(accounts)  # hidden from every log, report and file from now on
        if not accounts:
            self.empty_accounts_seen = True
            return
        if not self.accounts:
            self.accounts = accounts
            self.mark_at(PHASE_MANAGED_ACCOUNTS, t)
        self._check_ready(t)

    def _check_ready(self, t: float) -> None:
        if self.next_valid_id is not None and self.accounts and not self.ready.done():
            self.mark_at(PHASE_API_READY, t)
            self.ready.set_result(t)

    def on_error(self, t: float, req_id: int, code: int, message: str) -> None:
        startup.fail_pending(self, req_id, code, message)  # a start-up step's refusal (200, 162...)
        if code in _LOCAL_CODES:
            self.local_errors.append(f"{code}: {message.strip()}")
            if code == _CONNECT_FAIL:
                self.connect_failed = True
            return
        self.result.messages.append(GatewayMessage(req_id=req_id, code=code, message=message,
                                                   at=round(t - self.clock.t0, 3)))
        if self.events is not None:
            self.events.emit_message(self.result.messages[-1])
        if code == _CLIENT_ID_IN_USE and not self.ready.done():
            self.ready.set_exception(
                _Stall(
                    PHASE_NEXT_VALID_ID,
                    f"error 326: client id {self.result.client_id} is already in use "
                    f"({message})",
                )
            )
            self.ready.exception()  # retrieved by connect() if it is still waiting

    def on_closed(self, t: float) -> None:
        self.closed = True
        if self.events is not None:
            self.events.mark_closed("ibapi: connectionClosed (the Gateway closed the connection)")
        if not self.ready.done():
            phase = PHASE_NEXT_VALID_ID if self.next_valid_id is None else PHASE_MANAGED_ACCOUNTS
            self.ready.set_exception(
                _Stall(phase, "the connection closed before nextValidId and managedAccounts")
            )
            self.ready.exception()
        gone = ConnectionError("ibapi connection closed")
        pending: list[asyncio.Future[Any]] = [
            self.first_value,
            *self.download_end.values(),
            *self.exec_end.values(),
            *self.time_waiters,
        ]
        if self.positions_end is not None:
            pending.append(self.positions_end)
        for fut in pending:
            if not fut.done():
                fut.set_exception(gone)
                fut.exception()  # mark retrieved: a closed socket is not a bug here
        self.time_waiters.clear()

    def on_thread_error(self, t: float, text: str) -> None:
        self.thread_errors.append(text)

    def on_account_value(self, t: float, key: str, val: str, currency: str, account: str) -> None:
        self.values[(account, key, currency)] = AccountValue(account, key, val, currency)
        if self.events is not None:
            self.events.emit_account_value()
        self.mark_at(PHASE_FIRST_ACCOUNT_VALUE, t)
        if not self.first_value.done():
            self.first_value.set_result(None)

    def on_portfolio(self, t: float, account: str, con_id: int) -> None:
        self.portfolio.add((account, con_id))

    def on_download_end(self, t: float, account: str) -> None:
        fut = self.download_end.get(account)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def on_position(self, t: float, position: Position) -> None:
        self.positions[(position.account, position.con_id)] = position

    def on_position_end(self, t: float) -> None:
        if self.positions_end is not None and not self.positions_end.done():
            self.positions_end.set_result(None)

    def on_exec_end(self, t: float, req_id: int) -> None:
        fut = self.exec_end.get(req_id)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def on_current_time(self, t: float, epoch: int) -> None:
        while self.time_waiters:
            fut = self.time_waiters.pop(0)
            if not fut.done():
                fut.set_result(t)
                return


class _App(startup.IbapiStartupCallbacks, EWrapper, EClient):
    """The ordinary ibapi application object: wrapper and client in one.

    Subclassing EWrapper to receive callbacks is how ibapi is meant to be
    used; nothing of EClient is overridden. Each callback runs on an ibapi
    thread and only forwards to the loop.
    """

    def __init__(self, attempt: _Attempt) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self._attempt = attempt

    def connectAck(self) -> None:
        self._attempt.post(self._attempt.on_connect_ack)

    def nextValidId(self, orderId: int) -> None:
        self._attempt.post(self._attempt.on_next_valid_id, int(orderId))

    def managedAccounts(self, accountsList: str) -> None:
        accounts = [a for a in accountsList.split(",") if a]
        self._attempt.post(self._attempt.on_managed_accounts, accounts)

    def error(self, reqId: int, *args: Any) -> None:
        """Every ibapi generation's signature, so the client matrix can run them all:
        10.50 (errorTime, errorCode, errorString[, advancedOrderRejectJson]),
        10.37-10.45 (errorCode, errorString[, advancedOrderRejectJson]), 9.81 (errorCode, errorString)."""
        code, text = (args[0], args[1]) if len(args) >= 2 and isinstance(args[1], str) else (args[1], args[2])
        self._attempt.post(self._attempt.on_error, int(reqId), int(code), str(text))

    def connectionClosed(self) -> None:
        self._attempt.post(self._attempt.on_closed)

    def updateAccountValue(self, key: str, val: str, currency: str, accountName: str) -> None:
        self._attempt.post(self._attempt.on_account_value, key, val, currency, accountName)

    def updatePortfolio(
        self,
        contract: Any,
        position: Any,
        marketPrice: float,
        marketValue: float,
        averageCost: float,
        unrealizedPNL: float,
        realizedPNL: float,
        accountName: str,
    ) -> None:
        self._attempt.post(self._attempt.on_portfolio, accountName, int(contract.conId))

    def updateAccountTime(self, timeStamp: str) -> None:
        pass

    def accountDownloadEnd(self, accountName: str) -> None:
        self._attempt.post(self._attempt.on_download_end, accountName)

    def position(self, account: str, contract: Any, position: Any, avgCost: float) -> None:
        item = Position(
            account=account,
            con_id=int(contract.conId),
            symbol=contract.symbol,
            sec_type=contract.secType,
            currency=contract.currency,
            position=float(position),
            avg_cost=float(avgCost),
        )
        self._attempt.post(self._attempt.on_position, item)

    def positionEnd(self) -> None:
        self._attempt.post(self._attempt.on_position_end)

    def execDetails(self, reqId: int, contract: Any, execution: Any) -> None:
        pass

    def execDetailsEnd(self, reqId: int) -> None:
        self._attempt.post(self._attempt.on_exec_end, int(reqId))

    def currentTime(self, time: int) -> None:  # noqa: A002 - ibapi's parameter name
        self._attempt.post(self._attempt.on_current_time, int(time))


class _CallThread:
    """The one thread that makes every EClient call for a connection.

    Calls run in submission order; each returns an asyncio Future resolved
    on the loop. ``close()`` lets the thread finish after the queued calls.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self._loop = loop
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._queue.put((fn, args, fut))
        return fut

    def close(self) -> None:
        self._queue.put(None)

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args, fut = item
            try:
                outcome: tuple[bool, Any] = (True, fn(*args))
            except BaseException as exc:  # handed to the awaiting coroutine
                outcome = (False, exc)
            try:
                self._loop.call_soon_threadsafe(_settle, fut, outcome)
            except RuntimeError:  # loop closed
                pass


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def _settle(fut: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if fut.done():
        return
    ok, value = outcome
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


def _order_phases(clock: PhaseClock) -> None:
    """Keep ``phases`` in handshake order; TCP is marked after connectAck is
    processed, so insertion order alone would list it second."""
    ordered = {p: clock.phases[p] for p in PHASES if p in clock.phases}
    clock.phases.clear()
    clock.phases.update(ordered)


def _disconnect_now(app: _App) -> None:
    """``EClient.disconnect()``, then wake the thread that sits in ``recv`` on its socket.

    Why: ibapi closes its socket while its ``EReader`` thread (or a stalled
    ``connect`` loop) is inside ``recv`` with a 1 s timeout; the kernel keeps
    the connection open until that call returns, so the FIN and the thread's
    exit came up to 1 s later, on every disconnect. A duplicate of the
    descriptor, taken before ibapi closes its own and shut down after, sends
    the FIN at once and ends that ``recv`` with end-of-stream; ibapi, already
    disconnected (``conn.socket`` cleared), then leaves its loop as it would
    after the timeout. ibapi's code is unchanged and the Gateway sees the same
    close, before ``disconnect()`` returns as before; only the wait is gone.
    An application's own slow close (tests/clients/test_client_slow_close.py)
    is unaffected: it never calls this.
    """
    conn = getattr(app, "conn", None)
    sock = getattr(conn, "socket", None)
    try:
        wake = sock.dup() if sock is not None else None
    except OSError:
        wake = None
    try:
        app.disconnect()
    except Exception:
        # EClient.run's own ``finally: disconnect()`` may race with ours and
        # find ``conn`` already cleared; the socket is closed either way.
        pass
    if wake is not None:
        with contextlib.suppress(OSError):
            wake.shutdown(socket.SHUT_RDWR)
        wake.close()


def _shutdown(app: _App, run_thread: threading.Thread | None, timeout: float) -> list[str]:
    """Runs on the call thread: disconnect, then wait for ibapi's threads.

    Returns the names of threads still alive after ``timeout`` (evidence of
    a leak; expected to be empty).
    """
    _disconnect_now(app)
    deadline = time.monotonic() + timeout
    threads = [
        t for t in threading.enumerate() if isinstance(t, EReader) and t.msg_queue is app.msg_queue
    ]
    if run_thread is not None:
        threads.append(run_thread)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in threads if t.is_alive()]


class IbapiClient:
    """`ClientAdapter` over ``ibapi.client.EClient`` / ``ibapi.wrapper.EWrapper``.

    Args:
        strict_sync: when True, ``connect`` raises HandshakeError in phase
            ``first_account_value`` if no account value arrives before the
            deadline. Default False: the connect is reported ok with that
            phase missing, mirroring ib_async's non-raising start-up sync.

    Attributes beyond the protocol, kept for evidence:
        lingering_threads: names of ibapi threads still alive after the last
            teardown (expected empty).
        local_errors: errors ibapi generated itself (502, 504, ...) during
            the last connection.
    """

    def __init__(self, *, strict_sync: bool = False) -> None:
        self.info: ClientInfo = client_info()
        self.strict_sync = strict_sync
        self.lingering_threads: list[str] = []
        self._app: _App | None = None
        self._attempt: _Attempt | None = None
        self._calls: _CallThread | None = None
        self._run_thread: threading.Thread | None = None
        self._connecting: asyncio.Future[Any] | None = None  # EClient.connect in flight
        # Announced from the attempt's loop-thread handlers (connectionClosed,
        # error, updateAccountValue), never from ibapi's own threads.
        self.events = AdapterEvents()

    @property
    def local_errors(self) -> list[str]:
        return list(self._attempt.local_errors) if self._attempt else []

    async def connect(
        self, host: str, port: int, client_id: int, *, timeout: float = 10.0, readonly: bool = True
    ) -> ConnectResult:
        """Connect, start ``EClient.run``, wait for nextValidId + managedAccounts,
        subscribe to the first account's updates and wait for its first value.

        ``readonly`` has no wire meaning for ibapi (it is a Gateway setting);
        it is recorded, and this adapter never sends order requests.
        """
        await self.disconnect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        result = ConnectResult(
            client=self.info, host=host, port=port, client_id=client_id, readonly=readonly
        )
        attempt = _Attempt(loop, result)
        result.phases = attempt.clock.phases
        self.events.reset()
        attempt.events = self.events
        app = _App(attempt)
        self._app, self._attempt = app, attempt
        self._calls = _CallThread(loop, f"ibapi-calls-{client_id}")

        def remaining() -> float:
            return max(0.0, deadline - loop.time())

        try:
            await self._open_socket(app, attempt, host, port, client_id, timeout, remaining)
            self._run_thread = threading.Thread(
                target=self._run_app, args=(app, attempt), name=f"ibapi-run-{client_id}", daemon=True
            )
            self._run_thread.start()
            try:
                await asyncio.wait_for(asyncio.shield(attempt.ready), remaining())
            except TimeoutError:
                raise self._ready_timeout(attempt, timeout) from None
            result.accounts = list(attempt.accounts)
            result.next_valid_id = attempt.next_valid_id
            await self._first_account_value(app, attempt, remaining)
        except _Stall as stall:
            await self._teardown()
            _order_phases(attempt.clock)
            result.failed_phase, result.error = stall.phase, self._with_local_errors(stall.cause)
            raise HandshakeError(stall.phase, result.error, result) from None
        except BaseException:
            await self._teardown()
            raise

        result.server_version = app.serverVersion()
        conn_time = app.connTime  # ibapi 10.x keeps the raw field: bytes
        result.connection_time = (
            conn_time.decode(errors="replace") if isinstance(conn_time, bytes) else conn_time
        )
        result.ok = True
        _order_phases(attempt.clock)
        return result

    async def _open_socket(
        self,
        app: _App,
        attempt: _Attempt,
        host: str,
        port: int,
        client_id: int,
        timeout: float,
        remaining: Callable[[], float],
    ) -> None:
        """Run the blocking ``EClient.connect`` on the call thread, bounded."""
        assert self._calls is not None
        _TAP.acquire(id(app), attempt)
        try:
            connecting = self._calls.submit(app.connect, host, port, client_id)
            self._connecting = connecting
            try:
                await asyncio.wait_for(asyncio.shield(connecting), remaining())
            except TimeoutError:
                # connect() is still looping on 1 s recv timeouts (or, for an
                # unroutable host, still inside socket.connect). Closing the
                # socket from here is what breaks the loop; the call thread
                # is not holding ibapi's send lock while it waits in recv.
                self._disconnect_from_loop(app)
                # connect() ends with ibapi's own error once conn is cleared;
                # teardown waits for it, its outcome is not evidence.
                connecting.add_done_callback(_consume)
                tcp_done = attempt.tcp_candidate is not None and not attempt.connect_failed
                if tcp_done:
                    assert attempt.tcp_candidate is not None
                    attempt.mark_at(PHASE_TCP, attempt.tcp_candidate)
                    raise _Stall(
                        PHASE_SERVER_VERSION,
                        f"TCP accepted but no server version reply within {timeout}s "
                        "(EClient.connect would have waited forever)",
                    ) from None
                raise _Stall(PHASE_TCP, f"TCP connect did not complete within {timeout}s") from None
            try:
                connecting.result()
            except Exception as exc:  # ibapi let an exception escape connect()
                attempt.thread_errors.append(f"EClient.connect raised {exc!r}")
        finally:
            _TAP.release(id(app))

        if attempt.connect_failed or (attempt.tcp_candidate is None and app.serverVersion() is None):
            raise _Stall(PHASE_TCP, f"could not connect to {host}:{port}")
        if attempt.tcp_candidate is not None:
            attempt.mark_at(PHASE_TCP, attempt.tcp_candidate)
        elif attempt.clock.reached(PHASE_SERVER_VERSION):  # upper bound: connectAck
            attempt.clock.phases.setdefault(PHASE_TCP, attempt.clock.phases[PHASE_SERVER_VERSION])
        # connectAck (posted before connect() returned, so already handled)
        # is the proof of the version handshake. Not isConnected(): the
        # reader may already have seen the Gateway close the socket right
        # after startApi (error 326), and run() must still drain those
        # queued messages.
        if not attempt.clock.reached(PHASE_SERVER_VERSION):
            raise _Stall(
                PHASE_SERVER_VERSION,
                "TCP accepted but the socket closed before the server version reply",
            )

    @staticmethod
    def _ready_timeout(attempt: _Attempt, timeout: float) -> _Stall:
        if attempt.next_valid_id is None:
            return _Stall(PHASE_NEXT_VALID_ID, f"no nextValidId within {timeout}s")
        what = "was empty" if attempt.empty_accounts_seen else "never arrived"
        return _Stall(PHASE_MANAGED_ACCOUNTS, f"managedAccounts {what} within {timeout}s")

    async def _first_account_value(
        self, app: _App, attempt: _Attempt, remaining: Callable[[], float]
    ) -> None:
        await self._call(app.reqAccountUpdates, True, attempt.accounts[0])
        try:
            await asyncio.wait_for(asyncio.shield(attempt.first_value), remaining())
        except TimeoutError:
            if self.strict_sync:
                raise _Stall(
                    PHASE_FIRST_ACCOUNT_VALUE,
                    f"no updateAccountValue for {attempt.accounts[0]} before the deadline",
                ) from None
        except ConnectionError:
            raise _Stall(
                PHASE_FIRST_ACCOUNT_VALUE, "the connection closed during account sync"
            ) from None

    @staticmethod
    def _run_app(app: _App, attempt: _Attempt) -> None:
        """Target of the EClient.run thread; keeps ibapi's exceptions as evidence."""
        try:
            app.run()
        except Exception as exc:
            attempt.post(attempt.on_thread_error, f"EClient.run raised {exc!r}")

    @staticmethod
    def _disconnect_from_loop(app: _App) -> None:
        _disconnect_now(app)

    def _with_local_errors(self, cause: str) -> str:
        attempt = self._attempt
        if attempt is None or not (attempt.local_errors or attempt.thread_errors):
            return cause
        extra = "; ".join(e.splitlines()[0] for e in attempt.local_errors + attempt.thread_errors)
        return f"{cause} (ibapi: {extra})"

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._calls is None:
            raise ConnectionError("ibapi client is not connected")
        return await self._calls.submit(fn, *args)

    def _require(self) -> tuple[_App, _Attempt]:
        if self._app is None or self._attempt is None or self._attempt.closed:
            raise ConnectionError("ibapi client is not connected")
        return self._app, self._attempt

    async def ping(self, timeout: float = 5.0) -> float:
        """reqCurrentTime -> currentTime; seconds from send to the callback."""
        app, attempt = self._require()
        waiter: asyncio.Future[float] = attempt.loop.create_future()
        attempt.time_waiters.append(waiter)
        start = time.monotonic()
        await self._call(app.reqCurrentTime)
        try:
            arrived = await asyncio.wait_for(waiter, timeout)
        finally:
            if waiter in attempt.time_waiters:
                attempt.time_waiters.remove(waiter)
        return arrived - start

    async def account_snapshot(self, timeout: float = 10.0) -> AccountSnapshot:
        """Fresh reqPositions, reqAccountUpdates per account, reqExecutions.

        Each end marker counts only if its callback arrives before the shared
        deadline. Account updates go one account at a time because the
        Gateway keeps a single reqAccountUpdates subscription per client; each
        is cancelled (``reqAccountUpdates(False, acct)``) once its download
        ended or timed out.
        """
        app, attempt = self._require()
        loop = attempt.loop
        deadline = loop.time() + timeout

        async def arrives(fut: asyncio.Future[None]) -> bool:
            try:
                await asyncio.wait_for(asyncio.shield(fut), max(0.0, deadline - loop.time()))
                return True
            except TimeoutError:
                return False

        async def positions() -> bool:
            attempt.positions.clear()
            attempt.positions_end = loop.create_future()
            await self._call(app.reqPositions)
            ended = await arrives(attempt.positions_end)
            await self._call(app.cancelPositions)
            return ended

        async def downloads() -> list[str]:
            ended: list[str] = []
            for acct in list(attempt.accounts):
                fut = attempt.download_end[acct] = loop.create_future()
                await self._call(app.reqAccountUpdates, True, acct)
                if await arrives(fut):
                    ended.append(acct)
                await self._call(app.reqAccountUpdates, False, acct)
            return ended

        async def executions() -> bool:
            req_id = attempt.next_req_id
            attempt.next_req_id += 1
            fut = attempt.exec_end[req_id] = loop.create_future()
            await self._call(app.reqExecutions, req_id, ExecutionFilter())
            return await arrives(fut)

        pos_end, download_end, exec_end = await asyncio.gather(
            positions(), downloads(), executions()
        )
        return AccountSnapshot(
            accounts=list(attempt.accounts),
            positions=list(attempt.positions.values()),
            account_values=list(attempt.values.values()),
            portfolio_items=len(attempt.portfolio),
            positions_end=pos_end,
            account_download_end=download_end,
            executions_end=exec_end,
        )

    # -- a trading app's start-up steps (harness/clients/startup.py) ---------

    async def _startup_request(self, step: str, send: Callable[[int], Any], timeout: float) -> startup.PendingRequest:
        """Send one request under a fresh id; return its replies once its end
        (or its error) arrived."""
        app, attempt = self._require()
        req_id = attempt.next_req_id
        attempt.next_req_id += 1
        pending = startup.PendingRequest(attempt.loop, step)
        startup.pending_of(attempt)[req_id] = pending
        try:
            await self._call(send, req_id)
            await asyncio.wait_for(asyncio.shield(pending.done), timeout)
        except TimeoutError:
            raise startup.StartupError(step, 0, f"no answer within {timeout:g} s") from None
        finally:
            startup.pending_of(attempt).pop(req_id, None)
        return pending

    async def qualify(self, spec: Contract, timeout: float = 10.0) -> startup.QualifiedContract:
        app, _ = self._require()
        contract = startup.ibapi_contract(spec)
        pending = await self._startup_request("qualify", lambda rid: app.reqContractDetails(rid, contract), timeout)
        if len(pending.items) != 1:
            raise startup.StartupError("qualify", 0, f"{len(pending.items)} contracts match {spec.symbol}")
        return startup.qualified_from_ibapi(pending.items[0])

    async def historical_bars(self, spec: Contract, duration: str = "1 D", bar_size: str = "5 mins",
                              what_to_show: str = "TRADES", timeout: float = 30.0) -> list[startup.Bar]:
        app, _ = self._require()
        contract = startup.ibapi_contract(spec)
        pending = await self._startup_request(
            "historical_bars",
            lambda rid: app.reqHistoricalData(rid, contract, "", duration, bar_size, what_to_show, 1, 1, False, []),
            timeout)
        return list(pending.items)

    async def snapshot(self, spec: Contract, market_data_type: int = 1,
                       timeout: float = 10.0) -> startup.Snapshot:
        app, _ = self._require()
        contract = startup.ibapi_contract(spec)
        await self._call(app.reqMarketDataType, market_data_type)
        pending = await self._startup_request(
            "snapshot", lambda rid: app.reqMktData(rid, contract, "", True, False, []), timeout)
        v = pending.values
        return startup.Snapshot(v.get("market_data_type"), startup._price(v.get("bid")),
                                startup._price(v.get("ask")), startup._price(v.get("last")),
                                startup._price(v.get("close")), list(pending.notices))

    async def pnl(self, account: str = "", timeout: float = 10.0) -> startup.PnLValue:
        app, attempt = self._require()
        account = account or attempt.accounts[0]
        ids: list[int] = []

        def send(rid: int) -> None:
            ids.append(rid)
            app.reqPnL(rid, account, "")

        try:
            pending = await self._startup_request("pnl", send, timeout)
        finally:
            if ids:
                await self._call(app.cancelPnL, ids[0])
        v = pending.values
        return startup.PnLValue(account, startup._price_or_zero(v.get("daily")),
                                startup._price_or_zero(v.get("unrealized")),
                                startup._price_or_zero(v.get("realized")))

    async def disconnect(self) -> None:
        """EClient.disconnect() and wait for every ibapi thread to end.

        Safe to call when never connected, after a failed connect, or twice.
        """
        await self._teardown()

    async def _teardown(self) -> None:
        app, calls, run_thread = self._app, self._calls, self._run_thread
        self._app, self._calls, self._run_thread = None, None, None
        if calls is None:
            return
        assert app is not None
        connecting, self._connecting = self._connecting, None
        if connecting is not None and not connecting.done():
            # Cancelled while EClient.connect still waits for the version
            # reply: only closing the socket from here can end that loop.
            self._disconnect_from_loop(app)
            connecting.add_done_callback(_consume)
        done = calls.submit(_shutdown, app, run_thread, DRAIN_TIMEOUT)
        calls.close()
        try:
            # The call thread may first have to finish a stalled connect()
            # (up to ~1 s after the socket was closed), then the drain.
            self.lingering_threads = await asyncio.wait_for(done, DRAIN_TIMEOUT + 2.0)
        except TimeoutError:
            self.lingering_threads = [calls.thread.name]
        # The call thread has posted its result and is returning; the join
        # is immediate and makes "no thread outlives disconnect()" exact.
        calls.thread.join(timeout=1.0)
        if calls.thread.is_alive() and calls.thread.name not in self.lingering_threads:
            self.lingering_threads.append(calls.thread.name)
        if self.lingering_threads:
            log.warning("ibapi threads still alive after disconnect: %s", self.lingering_threads)
