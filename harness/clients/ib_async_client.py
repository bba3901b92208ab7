"""Adapter over the real ib_async library, used exactly as applications use it.

Why this adapter exists: most Python users reach IB Gateway through
``ib_async.IB.connectAsync``. Its failure modes (a ``TimeoutError`` after
``timeout`` seconds, sync requests that silently time out, a handshake that
never completes) are what they actually see, so the harness must run the
unmodified library and only *watch* it.

What is observed, and how (nothing in ib_async is patched or wrapped):

* ``tcp_connect``: the ``"Connected"`` INFO record of the ``ib_async.client``
  logger, written right after the TCP connect completed.
* ``server_version``: the ``"Logged on to server version N"`` INFO record,
  written when the handshake reply was accepted.
* ``next_valid_id`` / ``managed_accounts``: ib_async has no public event per
  message; its ``client.apiStart`` event fires only once *both* have arrived.
  To time them separately we read ib_async's own DEBUG frame log
  (``"<<< 9,1,N"`` / ``"<<< 15,1,DU..."``). The DEBUG level of
  ``ib_async.client`` is raised only while a connect is in progress, and the
  extra records are dropped again by a logger filter, so no other handler
  sees more than the application configured. If those records are somehow not
  seen (e.g. ``logging.disable``), both phases fall back to the ``apiStart``
  time, which is an upper bound for each.
* ``first_account_value``: the first ``IB.accountValueEvent`` emission
  (from ``updateAccountValue`` or ``accountUpdateMulti``).
* ``api_ready``: ``IB.connectAsync`` returned, i.e. ib_async finished its
  own start-up synchronisation, which is the moment an application may use it.

Log records are attributed to one connect attempt with a ``ContextVar``:
asyncio copies the context of the task that opened the connection into the
transport's read callbacks, so every record ib_async writes while handling
that socket's data carries the attempt that opened it, even when several
adapters run in the same process.

Timeouts: ``timeout`` is passed to ``connectAsync`` unchanged, and ib_async
applies it separately to the TCP connect, to apiStart, to the concurrent
start-up requests and to the executions request, so a connect may take up
to about four times ``timeout``. That is the library's real behaviour and
is deliberately not hidden behind an outer deadline.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Awaitable
from importlib import metadata
from typing import Any

from ib_async import IB

from ..core.redact import remember_accounts, unredacted_message
from ..protocol.messages import Contract
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
from .raw import version_out_of_range

log = logging.getLogger("harness.clients.ib_async")

_CLIENT_LOGGER = "ib_async.client"
# Each logger the tap reads, and the lowest level it must see there: frames
# ("<<< ...") are DEBUG on the client logger; start-up "... request timed
# out" is an ERROR on ib_async.ib.
_TAPPED_LOGGERS: dict[str, int] = {
    "ib_async.client": logging.DEBUG,
    "ib_async.ib": logging.ERROR,
}

# The connect attempt whose socket produced the log record being handled.
_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "ibgw_ib_async_attempt", default=None
)


def client_info() -> ClientInfo:
    """Which ib_async build is installed and the API version range it offers."""
    from ib_async.client import Client

    from ..extras import warn_if_unsupported

    try:
        version = metadata.version("ib_async")
    except metadata.PackageNotFoundError:  # a copy no distribution claims: ib_async says its own version
        import ib_async

        version = str(getattr(ib_async, "__version__", "unknown"))
    warn_if_unsupported("ib_async", version, log)
    return ClientInfo(
        name="ib_async",
        package="ib_async",
        version=version,
        min_version=int(getattr(Client, "MinClientVersion", 157)),
        max_version=int(getattr(Client, "MaxClientVersion", 178)),
    )


def _order_phases(clock: PhaseClock) -> None:
    """Keep ``phases`` in handshake order whatever order the Gateway sent
    nextValidId / managedAccounts in; the times still show the real order."""
    ordered = {p: clock.phases[p] for p in PHASES if p in clock.phases}
    clock.phases.clear()
    clock.phases.update(ordered)


class _LogTap(logging.Filter):
    """Process-wide observer on ib_async's loggers.

    Why a logger *filter* rather than a handler: a filter on the originating
    logger sees each record once, before any handler, and can veto it. That
    lets us lower ``ib_async.client`` to DEBUG (to see the ``<<<`` frame
    records) and ``ib_async.ib`` to ERROR (its start-up timeouts) and still
    drop the extra records, so applications and pytest's log capture see
    exactly what their own configuration allows, and an application that
    silences ib_async (as `ibgw soak` does) does not blind the adapter.

    Reference counted because several adapters may connect at once; the
    logger's level is restored when the last one is done.
    """

    def __init__(self) -> None:
        super().__init__("ibgw-harness-tap")
        self._lock = threading.Lock()
        self._users = 0
        self._saved_levels: dict[str, int] = {}
        self._thresholds: dict[str, int] = {}

    def acquire(self) -> None:
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            for name, needed in _TAPPED_LOGGERS.items():
                logger = logging.getLogger(name)
                self._saved_levels[name] = logger.level
                # What the application would have let through without us
                # (`ibgw soak` itself sets ib_async to CRITICAL).
                self._thresholds[name] = logger.getEffectiveLevel()
                if self._thresholds[name] > needed:
                    logger.setLevel(needed)
                logger.addFilter(self)

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            for name in _TAPPED_LOGGERS:
                logger = logging.getLogger(name)
                logger.removeFilter(self)
                logger.setLevel(self._saved_levels.pop(name, logging.NOTSET))

    def filter(self, record: logging.LogRecord) -> bool:
        attempt = _ATTEMPT.get()
        if attempt is not None and attempt.live:
            try:
                attempt.on_log(record)
            except Exception:  # observation must never break ib_async's logging
                log.exception("ib_async log observation failed")
        return record.levelno >= self._thresholds.get(record.name, logging.NOTSET)


_TAP = _LogTap()


class _Attempt:
    """Everything observed during one connect attempt.

    All callbacks run on the event loop thread (ib_async is single-threaded),
    so no locking is needed.
    """

    def __init__(self, result: ConnectResult) -> None:
        self.clock = PhaseClock()
        self.result = result
        self.live = True
        self.tcp_connected = False
        self.logged_on = False
        self.offered_version: int | None = None  # from the handshake frame, even if rejected
        self.next_valid_id: int | None = None
        self.accounts_frame: list[str] | None = None  # None: no managedAccounts frame seen
        self.api_started = False
        self.positions_end = False
        self.download_end: list[str] = []
        self.executions_end = False
        self.sync_timeouts: list[str] = []
        self.client_errors: list[str] = []  # ib_async's own apiError texts
        self.peer_closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    # -- log records -------------------------------------------------------

    def on_log(self, record: logging.LogRecord) -> None:
        msg = unredacted_message(record)  # the wire text itself, never written anywhere
        if record.name == _CLIENT_LOGGER:
            if msg == "Connected":
                self.tcp_connected = True
                self.clock.mark(PHASE_TCP)
            elif msg.startswith("Logged on to server version"):
                self.logged_on = True
                self.clock.mark(PHASE_SERVER_VERSION)
            elif msg.startswith("<<< "):
                self._on_frame(msg[4:])
        elif record.name == "ib_async.ib" and msg.endswith("request timed out"):
            self.sync_timeouts.append(msg)

    def _on_frame(self, text: str) -> None:
        """One incoming frame as ib_async logged it: fields joined by ','."""
        if not self.logged_on and self.offered_version is None:
            # ib_async treats the first 2-field message as the handshake reply.
            parts = text.split(",")
            if len(parts) == 2 and parts[0].isdigit():
                self.offered_version = int(parts[0])
                self.result.connection_time = parts[1]
                return
        msg_id, _, rest = text.partition(",")
        if msg_id == "9":
            _, _, value = rest.partition(",")
            if self.next_valid_id is None and value.lstrip("-").isdigit():
                self.next_valid_id = int(value)
                self.clock.mark(PHASE_NEXT_VALID_ID)
        elif msg_id == "15":
            _, _, accts = rest.partition(",")
            accounts = [a for a in accts.split(",") if a]
            remember_accounts(accounts)  # hidden from every log, report and file from now on
            if self.accounts_frame is None or not self.accounts_frame:
                self.accounts_frame = accounts
            if accounts:
                self.clock.mark(PHASE_MANAGED_ACCOUNTS)
        elif msg_id == "62":
            self.positions_end = True
        elif msg_id == "54":
            _, _, acct = rest.partition(",")
            if acct not in self.download_end:
                self.download_end.append(acct)
        elif msg_id == "55":
            self.executions_end = True

    # -- public ib_async events --------------------------------------------

    def on_api_start(self) -> None:
        self.api_started = True
        # Fallback when the frame records were not visible: apiStart fires on
        # the later of the two messages, so it bounds both from above.
        self.clock.mark(PHASE_NEXT_VALID_ID)
        self.clock.mark(PHASE_MANAGED_ACCOUNTS)

    def on_api_error(self, msg: str) -> None:
        if self.peer_closed.done():
            return  # ib_async's words for the harness ending the attempt (CancelledError), not the Gateway's
        self.client_errors.append(msg)
        # ib_async words an early close "Peer closed connection[. clientId N already in use?]" and then
        # keeps waiting for apiStart until its own timeout, although the socket is gone: nothing can
        # make this attempt ready any more, so the adapter ends it now with what the wire showed.
        if msg.startswith("Peer closed connection") and not self.api_started and not self.peer_closed.done():
            self.peer_closed.set_result(msg)

    def on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        self.result.messages.append(GatewayMessage(req_id=req_id, code=code, message=message,
                                                   at=round(time.monotonic() - self.clock.t0, 3)))

    def on_account_value(self, value: Any) -> None:
        self.clock.mark(PHASE_FIRST_ACCOUNT_VALUE)

    # -- failure classification ----------------------------------------------

    def classify(self, exc: BaseException, timeout: float | None) -> tuple[str, str]:
        """Name the phase that did not complete and a cause a human can act on."""
        codes = {m.code for m in self.result.messages}
        extra = "; ".join(self.client_errors)
        suffix = f" (ib_async: {extra})" if extra else ""
        if isinstance(exc, ConnectionRefusedError):
            return PHASE_TCP, f"connection refused: {exc}"
        if not self.tcp_connected:
            if isinstance(exc, TimeoutError):
                return PHASE_TCP, f"TCP connect did not complete within {timeout}s"
            return PHASE_TCP, f"TCP connect failed: {exc!r}"
        if not self.logged_on:
            if self.offered_version is not None:
                low = self.result.client.min_version or 0
                return PHASE_SERVER_VERSION, (
                    version_out_of_range(self.offered_version, low, self.result.client.max_version or low,
                                         "ib_async")
                    + f" (server offered version {self.offered_version}, which ib_async rejects){suffix}"
                )
            if isinstance(exc, PeerClosedError):
                return PHASE_SERVER_VERSION, f"TCP accepted, then closed before a server version reply{suffix}"
            return PHASE_SERVER_VERSION, (
                f"TCP accepted but no server version reply ({type(exc).__name__} "
                f"after {timeout}s){suffix}"
            )
        if not self.api_started:
            if 326 in codes:
                return PHASE_NEXT_VALID_ID, (
                    f"error 326: client id {self.result.client_id} is already in use{suffix}"
                )
            if self.next_valid_id is None:
                before = "the Gateway closed the connection" if isinstance(exc, PeerClosedError) \
                    else type(exc).__name__
                return PHASE_NEXT_VALID_ID, f"no nextValidId before {before}{suffix}"

            if not self.accounts_frame:
                what = "empty" if self.accounts_frame is not None else "missing"
                return PHASE_MANAGED_ACCOUNTS, f"managedAccounts {what} ({type(exc).__name__}){suffix}"
            return PHASE_NEXT_VALID_ID, f"apiStart never fired: {exc!r}{suffix}"
        if self.sync_timeouts and not self.clock.reached(PHASE_FIRST_ACCOUNT_VALUE):
            return PHASE_FIRST_ACCOUNT_VALUE, f"{exc!r}; sync timeouts: {self.sync_timeouts}"
        return PHASE_API_READY, f"{exc!r}{suffix}"


class PeerClosedError(ConnectionResetError):
    """The Gateway closed the connection before the API was ready (ib_async's "Peer closed connection")."""


async def _connect_unless_closed(ib: IB, attempt: _Attempt, host: str, port: int, client_id: int,
                                 timeout: float, readonly: bool) -> None:
    """``IB.connectAsync``, ended as soon as ib_async reports the peer closed the connection.

    Why: ib_async waits for apiStart until its timeout even after the socket is gone, so a Gateway
    (or a replay) that refuses and closes was reported only after the full timeout, as a generic
    timeout. The library is not changed; its own apiError event decides, and its connect task is
    cancelled (ib_async disconnects itself on cancellation).
    """
    connecting = asyncio.ensure_future(
        ib.connectAsync(host, port, clientId=client_id, timeout=timeout, readonly=readonly))
    try:
        await asyncio.wait({connecting, attempt.peer_closed}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        connecting.cancel()
        raise
    if connecting.done():
        connecting.result()  # its outcome, success or exception, as before
        return
    connecting.cancel()
    try:
        await connecting
    except (asyncio.CancelledError, Exception):  # noqa: S110 - ib_async's own teardown of the attempt
        pass
    raise PeerClosedError(attempt.peer_closed.result())


from . import startup  # noqa: E402 - a trading app's start-up steps (qualify, bars, snapshot, pnl)


class IbAsyncClient:
    """`ClientAdapter` over ``ib_async.IB``.

    Args:
        strict_sync: when True, a connect whose start-up sync logged
            ``"... request timed out"`` (or never produced an account value
            although an account exists) raises ``HandshakeError`` instead of
            returning. Default False, which is what ib_async itself does
            (``raiseSyncErrors=False``): it logs the timeout and carries on.

    Attributes beyond the protocol, kept for evidence:
        ib: the live ``IB`` instance, or None.
        sync_timeouts: the ``"... request timed out"`` messages ib_async
            logged during the last connect.
    """

    def __init__(self, *, strict_sync: bool = False) -> None:
        self.info: ClientInfo = client_info()
        self.strict_sync = strict_sync
        self.ib: IB | None = None
        self._attempt: _Attempt | None = None
        self.events = AdapterEvents()  # ib_async's own public events, re-announced

    @property
    def sync_timeouts(self) -> list[str]:
        return list(self._attempt.sync_timeouts) if self._attempt else []

    async def connect(
        self, host: str, port: int, client_id: int, *, timeout: float = 10.0, readonly: bool = True
    ) -> ConnectResult:
        """Run ``IB.connectAsync`` and report how far it got.

        Raises HandshakeError carrying the partial result when connectAsync
        raises; ib_async has already closed its socket by then.
        """
        await self.disconnect()
        result = ConnectResult(
            client=self.info, host=host, port=port, client_id=client_id, readonly=readonly
        )
        attempt = _Attempt(result)
        result.phases = attempt.clock.phases
        ib = IB()
        # Public events only; bound methods (eventkit keeps weak references).
        ib.errorEvent += attempt.on_error
        ib.accountValueEvent += attempt.on_account_value
        ib.client.apiStart += attempt.on_api_start
        ib.client.apiError += attempt.on_api_error
        # After the attempt's own handlers, so a listener finds each message
        # already in result.messages.
        self.events.reset()
        ib.errorEvent += self._announce_error
        ib.accountValueEvent += self._announce_account_value
        ib.disconnectedEvent += self._announce_closed
        self.ib = ib
        self._attempt = attempt

        token = _ATTEMPT.set(attempt)
        _TAP.acquire()
        try:
            await _connect_unless_closed(ib, attempt, host, port, client_id, timeout, readonly)
        except Exception as exc:
            phase, cause = attempt.classify(exc, timeout)
            self._close_quietly(ib)
            self.ib = None
            result.failed_phase, result.error = phase, cause
            raise HandshakeError(phase, cause, result) from exc
        except BaseException:  # cancellation: ib_async already disconnected
            self._close_quietly(ib)
            self.ib = None
            raise
        finally:
            attempt.live = False
            _TAP.release()
            _ATTEMPT.reset(token)
            _order_phases(attempt.clock)

        attempt.clock.mark(PHASE_API_READY)  # last phase: order is kept
        result.server_version = ib.client.serverVersion() or attempt.offered_version
        result.accounts = ib.managedAccounts()
        result.next_valid_id = attempt.next_valid_id
        result.ok = True

        if self.strict_sync:
            missing_values = bool(result.accounts) and not attempt.clock.reached(
                PHASE_FIRST_ACCOUNT_VALUE
            )
            if attempt.sync_timeouts or missing_values:
                phase = PHASE_FIRST_ACCOUNT_VALUE if missing_values else PHASE_API_READY
                cause = "start-up sync incomplete: " + (
                    "; ".join(attempt.sync_timeouts) or "no account value arrived"
                )
                result.ok, result.failed_phase, result.error = False, phase, cause
                await self.disconnect()
                raise HandshakeError(phase, cause, result)
        return result

    def _announce_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        attempt = self._attempt
        if attempt is not None and attempt.result.messages and attempt.result.messages[-1].code == code:
            self.events.emit_message(attempt.result.messages[-1])
        else:
            self.events.emit_message(GatewayMessage(req_id=req_id, code=code, message=message))

    def _announce_account_value(self, value: Any) -> None:
        self.events.emit_account_value()

    def _announce_closed(self) -> None:
        self.events.mark_closed("ib_async: disconnected (the Gateway closed the connection)")

    def _require(self) -> IB:
        if self.ib is None or not self.ib.isConnected():
            raise ConnectionError("ib_async client is not connected")
        return self.ib

    async def ping(self, timeout: float = 5.0) -> float:
        """``reqCurrentTimeAsync`` round trip in seconds; TimeoutError if no reply."""
        ib = self._require()
        start = time.monotonic()
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), timeout)
        return time.monotonic() - start

    async def account_snapshot(self, timeout: float = 10.0) -> AccountSnapshot:
        """ib_async's cached account state plus whether each end marker arrived.

        End markers seen during connectAsync's own start-up sync (in the
        ``<<<`` frame records) are reused; for any that were not seen, the
        request is issued again with ib_async's ``*Async`` method and the
        marker counts as arrived only if that future resolves in time. The
        whole snapshot shares one deadline.
        """
        ib = self._require()
        attempt = self._attempt
        assert attempt is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        async def arrives(make_request: Any) -> bool:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            awaitable: Awaitable[Any] = make_request()
            try:
                await asyncio.wait_for(awaitable, remaining)
                return True
            except TimeoutError:
                return False

        async def positions_end() -> bool:
            return attempt.positions_end or await arrives(ib.reqPositionsAsync)

        async def executions_end() -> bool:
            return attempt.executions_end or await arrives(ib.reqExecutionsAsync)

        async def downloads() -> list[str]:
            ended = list(attempt.download_end)
            # reqAccountUpdates holds one account at a time, so go in order.
            for acct in ib.managedAccounts():
                if acct in ended:
                    continue
                if await arrives(lambda a=acct: ib.reqAccountUpdatesAsync(a)):
                    ended.append(acct)
            return ended

        pos_end, download_end, exec_end = await asyncio.gather(
            positions_end(), downloads(), executions_end()
        )
        return AccountSnapshot(
            accounts=ib.managedAccounts(),
            positions=[
                Position(
                    account=p.account,
                    con_id=int(p.contract.conId),
                    symbol=p.contract.symbol,
                    sec_type=p.contract.secType,
                    currency=p.contract.currency,
                    position=float(p.position),
                    avg_cost=float(p.avgCost),
                )
                for p in ib.positions()
            ],
            account_values=[
                AccountValue(account=v.account, key=v.tag, value=v.value, currency=v.currency)
                for v in ib.accountValues()
            ],
            portfolio_items=len(ib.portfolio()),
            positions_end=pos_end,
            account_download_end=download_end,
            executions_end=exec_end,
        )

    # -- a trading app's start-up steps (harness/clients/startup.py) ---------

    async def qualify(self, spec: Contract, timeout: float = 10.0) -> startup.QualifiedContract:
        """reqContractDetails for one contract (what qualifyContracts does)."""
        return await startup.ib_async_qualify(self._require(), spec, timeout)

    async def historical_bars(self, spec: Contract, duration: str = "1 D", bar_size: str = "5 mins",
                              what_to_show: str = "TRADES", timeout: float = 30.0) -> list[startup.Bar]:
        return await startup.ib_async_bars(self._require(), spec, duration, bar_size, what_to_show, timeout)

    async def snapshot(self, spec: Contract, market_data_type: int = 1,
                       timeout: float = 10.0) -> startup.Snapshot:
        """reqMarketDataType, then a reqMktData snapshot ending on tickSnapshotEnd."""
        return await startup.ib_async_snapshot(self._require(), spec, market_data_type, timeout)

    async def pnl(self, account: str = "", timeout: float = 10.0) -> startup.PnLValue:
        """reqPnL for the account (default: the first managed one), then cancelPnL."""
        ib = self._require()
        return await startup.ib_async_pnl(ib, account or ib.managedAccounts()[0], timeout)

    async def disconnect(self) -> None:
        """``IB.disconnect()``; a no-op when never connected or already closed."""
        ib, self.ib = self.ib, None
        if ib is not None:
            self._close_quietly(ib)

    @staticmethod
    def _close_quietly(ib: IB) -> None:
        try:
            ib.disconnect()
        except ConnectionError:
            # IB.disconnect asks for connection stats, which raises when the
            # socket is up but the API never became ready; close the socket
            # through the client directly in that case.
            ib.client.disconnect()
