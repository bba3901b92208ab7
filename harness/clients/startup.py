"""A trading app's start-up steps as client calls: qualify, bars, snapshot, PnL.

Why a separate interface from ClientAdapter: connect/ping/account_snapshot
are what every client must offer; these four are what an app does next, and
a team's own adapter (`--client module:factory`) may offer none, some or
all of them. The start-up scenario asks `supports(client, step)` and reports
a step the client lacks as not run, never as a pass.

Results are plain dataclasses so both built-in adapters (ib_async, ibapi)
and a team's adapter return the same evidence. A Gateway's refusal (error
200, 162, 354...) raises StartupError with its code and text; nothing here
waits on a timeout to finish: every wait ends on the Gateway's answer or its
error, the timeout only bounds a Gateway that never answers.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.errors import HarnessError
from ..protocol.messages import Contract

STEPS = ("qualify", "historical_bars", "snapshot", "pnl")
# Codes that accompany data rather than refuse it (farm notices; 10167: delayed data follows).
NOTICE_CODES = frozenset({10167, 2104, 2106, 2107, 2108, 2158, 2119})


# The name README documents for what an app asks for, kept for one release: ContractSpec("AAPL")
# is Contract.request("AAPL"), the one contract record (protocol/messages.py), not a type of its own.
ContractSpec = Contract.request


@dataclass
class QualifiedContract:
    """A resolved contract (reqContractDetails): the one contract record
    (protocol/messages.py Contract) and the details the start-up reads."""

    contract: Contract
    min_tick: float = 0.0
    long_name: str = ""

    @classmethod
    def from_fields(cls, con_id: int, symbol: str, sec_type: str, exchange: str, primary_exchange: str,
                    currency: str, local_symbol: str, trading_class: str, last_trade_date: str = "",
                    multiplier: str = "", min_tick: float = 0.0, long_name: str = "") -> QualifiedContract:
        """From a client's contract details, field by field (an adapter's worker sends them flat)."""
        return cls(Contract(con_id, symbol, sec_type, currency, exchange, primary_exchange, local_symbol,
                            trading_class, last_trade_date, multiplier=multiplier), min_tick, long_name)

    @property
    def con_id(self) -> int:
        return self.contract.con_id

    @property
    def primary_exchange(self) -> str:
        return self.contract.primary_exchange

    def spec(self) -> Contract:
        """The contract to ask for in the later steps (resolved: its con_id is set)."""
        return self.contract


@dataclass
class Bar:
    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass
class Snapshot:
    market_data_type: int | None = None
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    close: float | None = None
    notices: list[int] = field(default_factory=list)  # e.g. 10167 before delayed data

    @property
    def has_price(self) -> bool:
        return any(_price(v) is not None for v in (self.bid, self.ask, self.last, self.close))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PnLValue:
    account: str
    daily: float | None
    unrealized: float | None
    realized: float | None


class StartupError(HarnessError):
    """A start-up step the Gateway refused (code > 0) or never answered (code 0)."""

    def __init__(self, step: str, code: int, message: str) -> None:
        self.step, self.code, self.message = step, code, message
        super().__init__(f"{step}: error {code}: {message}" if code else f"{step}: {message}")


def supports(client: Any, step: str) -> bool:
    return callable(getattr(client, step, None))


def _price(value: Any) -> float | None:
    """None for ibapi/ib_async's 'no value' markers (nan, -1, UNSET_DOUBLE)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(number) or number <= 0 or number > 1e300:
        return None
    return number


# ---------------------------------------------------------------- ib_async


def ib_async_contract(spec: Contract) -> Any:
    from ib_async import Contract as IbAsyncContract

    return IbAsyncContract(conId=spec.con_id, symbol=spec.symbol, secType=spec.sec_type, exchange=spec.exchange,
                    primaryExchange=spec.primary_exchange, currency=spec.currency,
                    lastTradeDateOrContractMonth=spec.last_trade_date, strike=spec.strike, right=spec.right,
                    multiplier=spec.multiplier)


class _IbAsyncErrors:
    """Collects error events for one request id while a request runs."""

    def __init__(self, ib: Any) -> None:
        self.ib = ib
        self.by_req: dict[int, list[tuple[int, str]]] = {}

    def __enter__(self) -> _IbAsyncErrors:
        self.ib.errorEvent += self._on_error
        return self

    def __exit__(self, *exc: object) -> None:
        self.ib.errorEvent -= self._on_error

    def _on_error(self, req_id: int, code: int, message: str, *rest: Any) -> None:
        self.by_req.setdefault(int(req_id), []).append((int(code), str(message)))

    def failure(self, step: str) -> StartupError | None:
        for errors in self.by_req.values():
            for code, message in errors:
                if code not in NOTICE_CODES and not 2100 <= code < 2200:
                    return StartupError(step, code, message)
        return None

    def notices(self) -> list[int]:
        return [code for errors in self.by_req.values() for code, _ in errors if code in NOTICE_CODES]


async def ib_async_qualify(ib: Any, spec: Contract, timeout: float) -> QualifiedContract:
    with _IbAsyncErrors(ib) as errors:
        details = await asyncio.wait_for(ib.reqContractDetailsAsync(ib_async_contract(spec)), timeout)
    if not details:
        raise errors.failure("qualify") or StartupError("qualify", 0, "no contract details and no error")
    if len(details) > 1:
        raise StartupError("qualify", 0, f"ambiguous: {len(details)} contracts match {spec.symbol}")
    d = details[0]
    c = d.contract
    return QualifiedContract.from_fields(c.conId, c.symbol, c.secType, c.exchange, c.primaryExchange, c.currency,
                                         c.localSymbol, c.tradingClass, c.lastTradeDateOrContractMonth, c.multiplier,
                                         d.minTick, d.longName)


async def ib_async_bars(ib: Any, spec: Contract, duration: str, bar_size: str, what_to_show: str,
                        timeout: float) -> list[Bar]:
    with _IbAsyncErrors(ib) as errors:
        bars = await ib.reqHistoricalDataAsync(ib_async_contract(spec), endDateTime="", durationStr=duration,
                                               barSizeSetting=bar_size, whatToShow=what_to_show, useRTH=True,
                                               formatDate=1, timeout=timeout)
    if not bars:
        raise errors.failure("historical_bars") or StartupError("historical_bars", 0, "no bars and no error")
    return [Bar(str(b.date), b.open, b.high, b.low, b.close, float(b.volume)) for b in bars]


async def ib_async_snapshot(ib: Any, spec: Contract, market_data_type: int, timeout: float) -> Snapshot:
    ib.reqMarketDataType(market_data_type)
    with _IbAsyncErrors(ib) as errors:
        tickers = await asyncio.wait_for(ib.reqTickersAsync(ib_async_contract(spec)), timeout)
    failure = errors.failure("snapshot")
    if failure is not None:
        raise failure
    if not tickers:
        raise StartupError("snapshot", 0, "no ticker and no error")
    t = tickers[0]
    return Snapshot(t.marketDataType, _price(t.bid), _price(t.ask), _price(t.last), _price(t.close),
                    errors.notices())


async def ib_async_pnl(ib: Any, account: str, timeout: float) -> PnLValue:
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[Any] = loop.create_future()

    def on_pnl(value: Any) -> None:
        if value.account == account and not arrived.done():
            arrived.set_result(value)

    ib.pnlEvent += on_pnl
    try:
        with _IbAsyncErrors(ib) as errors:
            ib.reqPnL(account)
            try:
                value = await asyncio.wait_for(arrived, timeout)
            except TimeoutError:
                raise errors.failure("pnl") or StartupError("pnl", 0, f"no pnl within {timeout:g} s") from None
    finally:
        ib.pnlEvent -= on_pnl
        ib.cancelPnL(account)
    return PnLValue(account, _price_or_zero(value.dailyPnL), _price_or_zero(value.unrealizedPnL),
                    _price_or_zero(value.realizedPnL))


def _price_or_zero(value: Any) -> float | None:
    """PnL values may be 0 or negative: only 'unset' markers become None."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or abs(number) > 1e300 else number


# ---------------------------------------------------------------- ibapi (official client)


class PendingRequest:
    """One ibapi request's replies, filled on the event loop from ibapi's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, step: str) -> None:
        self.step = step
        self.items: list[Any] = []
        self.notices: list[int] = []
        self.values: dict[str, Any] = {}
        self.done: asyncio.Future[None] = loop.create_future()

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def fail(self, code: int, message: str) -> None:
        if code in NOTICE_CODES or 2100 <= code < 2200:
            self.notices.append(code)
            return
        if not self.done.done():
            self.done.set_exception(StartupError(self.step, code, message))


class IbapiStartupCallbacks:
    """EWrapper callbacks for the start-up steps, mixed into the ibapi adapter's
    application object. Each forwards to the loop through the attempt's
    `post`, where the request's PendingRequest collects it."""

    _attempt: Any

    def _pending_post(self, handler: Any, req_id: int, *args: Any) -> None:
        self._attempt.post(_on_loop, self._attempt, handler, int(req_id), *args)

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:  # noqa: N802, N803
        self._pending_post(_add_item, reqId, contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:  # noqa: N802, N803
        self._pending_post(_finish, reqId)

    def historicalData(self, reqId: int, bar: Any) -> None:  # noqa: N802, N803
        self._pending_post(_add_item, reqId, Bar(str(bar.date), bar.open, bar.high, bar.low, bar.close,
                                                 float(bar.volume)))

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N802, N803
        self._pending_post(_finish, reqId)

    def marketDataType(self, reqId: int, marketDataType: int) -> None:  # noqa: N802, N803
        self._pending_post(_set_value, reqId, "market_data_type", int(marketDataType))

    def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:  # noqa: N802, N803
        name = _TICK_NAMES.get(int(tickType))
        if name is not None:
            self._pending_post(_set_value, reqId, name, float(price))

    def tickSnapshotEnd(self, reqId: int) -> None:  # noqa: N802, N803
        self._pending_post(_finish, reqId)

    def pnl(self, reqId: int, dailyPnL: float, unrealizedPnL: float, realizedPnL: float) -> None:  # noqa: N802, N803
        self._pending_post(_set_pnl, reqId, dailyPnL, unrealizedPnL, realizedPnL)


# bid/ask/last/close and their delayed twins (ibapi ticktype.py)
_TICK_NAMES = {1: "bid", 2: "ask", 4: "last", 9: "close", 66: "bid", 67: "ask", 68: "last", 75: "close"}


def pending_of(attempt: Any) -> dict[int, PendingRequest]:
    """The attempt's pending start-up requests (created on first use)."""
    table = getattr(attempt, "startup_pending", None)
    if table is None:
        table = attempt.startup_pending = {}
    return table


def _on_loop(t: float, attempt: Any, handler: Any, req_id: int, *args: Any) -> None:
    pending = pending_of(attempt).get(req_id)
    if pending is not None:
        handler(pending, *args)


def _add_item(p: PendingRequest, item: Any) -> None:
    p.items.append(item)


def _finish(p: PendingRequest) -> None:
    p.finish()


def _set_value(p: PendingRequest, key: str, value: Any) -> None:
    p.values[key] = value


def _set_pnl(p: PendingRequest, daily: float, unrealized: float, realized: float) -> None:
    p.values.update(daily=daily, unrealized=unrealized, realized=realized)
    p.finish()


def fail_pending(attempt: Any, req_id: int, code: int, message: str) -> None:
    """An error with a pending request's id: a notice, or the request's failure."""
    pending = pending_of(attempt).get(req_id)
    if pending is not None:
        pending.fail(code, message)


def ibapi_contract(spec: Contract) -> Any:
    from ibapi.contract import Contract as IbapiContract

    c = IbapiContract()
    c.conId, c.symbol, c.secType, c.exchange, c.primaryExchange, c.currency = (
        spec.con_id, spec.symbol, spec.sec_type, spec.exchange, spec.primary_exchange, spec.currency)
    c.lastTradeDateOrContractMonth, c.right, c.multiplier = spec.last_trade_date, spec.right, spec.multiplier
    if spec.strike:
        c.strike = spec.strike
    return c


def qualified_from_ibapi(details: Any) -> QualifiedContract:
    c = details.contract
    return QualifiedContract.from_fields(int(c.conId), c.symbol, c.secType, c.exchange, c.primaryExchange, c.currency,
                                         c.localSymbol, c.tradingClass, c.lastTradeDateOrContractMonth,
                                         str(c.multiplier), float(details.minTick), details.longName)


__all__ = ["STEPS", "Bar", "ContractSpec", "IbapiStartupCallbacks", "PendingRequest", "PnLValue",
           "QualifiedContract", "Snapshot", "StartupError", "fail_pending", "supports"]
