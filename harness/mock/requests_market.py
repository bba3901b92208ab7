"""Request handlers for a trading app's start-up: contracts, bars, quotes, PnL.

Why a module beside the session: the session owns the connection (handshake,
faults, the account flow); this desk answers the requests an app sends once
connected, from the instrument book (instruments.py) and the deterministic
prices (market.py), and answers every other request the official client can
send with the error a real Gateway sends (request_catalog.py), so no client
waits on the mock for ever. It only builds messages and hands them to the
session's one send path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..protocol import market as mk
from ..protocol import messages as m
from ..protocol.market import HISTORICAL_DATA_END
from ..protocol.messages import Execution, Message
from . import market as prices
from .instruments import MARKET_RULES, Instrument, InstrumentBook
from .request_catalog import (
    DELAYED_NOTICE,
    NO_SECURITY,
    Fallback,
    fallback_for,
    strict_error,
)

if TYPE_CHECKING:
    from .model import Holding
    from .session import Session

log = logging.getLogger("harness.mock")

COMMISSION_PER_FILL = 1.0  # IBKR Pro fixed: USD 1.00 minimum per order
AMBIGUOUS = "The contract description specified for {symbol} is ambiguous."

# Tick types (ibapi ticktype.py): live and their delayed twins.
LIVE_TICKS = {"bid_size": 0, "bid": 1, "ask": 2, "ask_size": 3, "last": 4, "last_size": 5, "high": 6, "low": 7,
              "volume": 8, "close": 9, "open": 14}
DELAYED_TICKS = {"bid": 66, "ask": 67, "last": 68, "bid_size": 69, "ask_size": 70, "last_size": 71, "high": 72,
                 "low": 73, "volume": 74, "close": 75, "open": 76}

BAR_UPDATE_INTERVAL = 2.0  # keepUpToDate: the bar being built, every few seconds as a Gateway sends it
TICK_INTERVAL = 1.0  # streaming reqMktData: a quote a second
MAX_STREAMS = 100  # a paper account's market-data lines; beyond them a Gateway answers 101
MAX_TICKERS = (101, "Max number of tickers has been reached")
KEEP_UP_TO_DATE_WITH_END = ("Error validating request.-'bS' : cause - End date not supported with live updates.")

SCANNER_XML = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ScanParameterResponse><InstrumentList>"
               "<Instrument><name>US Stocks</name><type>STK</type></Instrument></InstrumentList>"
               "<ScanTypeList><ScanType><displayName>Top % Gainers</displayName><scanCode>TOP_PERC_GAIN</scanCode>"
               "</ScanType></ScanTypeList></ScanParameterResponse>")


def _book_of(session: Session) -> InstrumentBook:
    book = session.gw.instrument_book
    if book is None:
        book = InstrumentBook.default()
        session.gw.instrument_book = book  # one book per gateway, built on first use
    return book


class MarketDesk:
    """Answers one connection's market requests; keeps its market data type."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.book = _book_of(session)
        self.data_type = 1  # reqMarketDataType: 1 live, 2 frozen, 3 delayed, 4 delayed frozen
        self.streams: dict[int, asyncio.Task[None]] = {}  # req id -> keepUpToDate bars / streaming ticks

    # ------------------------------------------------------------ plumbing

    @property
    def sv(self) -> int:
        return self.s.server_version

    def send(self, fields: list) -> None:
        self.s._send(fields)

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(m.error(self.sv, req_id, code, text, error_time_ms=int(time.time() * 1000)))

    def handlers(self) -> dict[int, Callable[[Message], None]]:
        table: dict[int, Callable[[Message], None]] = {
            1: self.req_mkt_data, 2: self.cancel_stream, 25: self.cancel_stream,
            9: self.req_contract_details, 20: self.req_historical_data,
            24: self.req_scanner_parameters, 59: self.req_market_data_type, 74: self.req_positions_multi,
            78: self.req_sec_def_opt_params, 79: self.req_soft_dollar_tiers, 80: self.req_family_codes,
            81: self.req_matching_symbols, 82: self.req_mkt_depth_exchanges, 83: self.req_smart_components,
            85: self.req_news_providers, 87: self.req_head_timestamp, 91: self.req_market_rule,
            92: self.req_pnl, 94: self.req_pnl_single, 104: self.req_user_info,
        }
        return table

    def fallback_handlers(self) -> dict[int, Callable[[Message], None]]:
        """Every catalogued request without a model: silence or its error."""
        table: dict[int, Callable[[Message], None]] = {}
        for out_id in range(1, 110):
            fb = fallback_for(out_id)
            if fb is not None:
                table[out_id] = self._make_fallback(fb)
        return table

    def _make_fallback(self, fb: Fallback) -> Callable[[Message], None]:
        def answer(request: Message) -> None:
            if fb.silent:
                return
            req_id = request.int("req_id", -1)
            strict = bool(getattr(self.s.gw, "strict", False))
            log.log(logging.WARNING if strict else logging.INFO,
                    "conn %d: %s %s (req id %d) answered with error %d", self.s.record.conn_id,
                    "FAILURE (strict): unmodelled" if strict else "unmodelled", request.name, req_id,
                    fb.code)
            record_unmodelled(self.s, request, req_id, fb.code)
            if strict:
                self.error(req_id, *strict_error(request.name, fb.code))
            else:
                self.error(req_id, fb.code, fb.text)
        return answer

    # ------------------------------------------------------------ contracts

    def _query(self, request: Message) -> dict[str, str]:
        return {k: str(v) for k, v in request.fields.items() if isinstance(v, str)}

    def _resolve(self, request: Message) -> Instrument | None:
        """One instrument for a data request, or the 200 a Gateway sends."""
        req_id = request.int("req_id", -1)
        found = self.book.match(self._query(request))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            self.error(req_id, NO_SECURITY[0], AMBIGUOUS.format(symbol=request.fields.get("symbol", "")))
        else:
            self.error(req_id, *NO_SECURITY)
        return None

    def req_contract_details(self, request: Message) -> None:
        req_id = request.int("req_id", -1)
        found = self.book.match(self._query(request))
        if not found:
            self.error(req_id, *NO_SECURITY)
            return
        replies = [mk.contract_data(self.sv, req_id, inst.details()) for inst in found]
        replies.append(mk.contract_data_end(req_id))
        delay = self.s.gw.faults.contract_details_delay()
        if delay:
            self._send_all_later(delay, replies, request.msg_id)
            return
        for fields in replies:
            self.send(fields)

    def _send_all_later(self, delay: float, replies: list[list], origin: int) -> None:
        """Fault slow-contract-details: the replies, in order, after the delay
        (one task, cancelled with the connection's other delayed replies)."""
        async def later() -> None:
            await asyncio.sleep(delay)  # the fault's injected delay
            for fields in replies:
                self.s._send(fields, origin)
            await self.s._drain()

        task = asyncio.create_task(later())
        self.s._later.add(task)
        task.add_done_callback(self.s._later.discard)

    def req_matching_symbols(self, request: Message) -> None:
        req_id = request.int("req_id", -1)
        rows = [(i.contract.con_id, i.symbol, i.contract.sec_type, i.contract.primary_exchange or i.exchange,
                 i.contract.currency, list(i.derivative_sec_types), i.long_name)
                for i in self.book.search(str(request.fields.get("pattern", "")))]
        self.send(mk.symbol_samples(self.sv, req_id, rows))

    def req_sec_def_opt_params(self, request: Message) -> None:
        req_id = request.int("req_id", -1)
        con_id = request.int("underlying_con_id", 0)
        symbol = str(request.fields.get("underlying_symbol", "")).upper()
        under = self.book.by_con_id(con_id) if con_id else None
        if under is None and symbol:
            matches = [i for i in self.book.underlyings() if i.symbol == symbol]
            under = matches[0] if matches else None
        if under is not None:
            expirations, strikes = self.book.option_chain(under.contract.con_id)
            if expirations:
                for exchange in ("SMART", "CBOE", "AMEX"):
                    self.send(mk.sec_def_opt_params(req_id, exchange, under.contract.con_id, under.symbol, "100",
                                                    expirations, strikes))
        self.send(mk.sec_def_opt_params_end(req_id))

    def req_head_timestamp(self, request: Message) -> None:
        inst = self._resolve(request)
        if inst is None:
            return
        stamp = inst.head_timestamp
        if str(request.fields.get("format_date", "1")) == "2":
            stamp = str(prices.parse_end(stamp.replace("-", " ", 1)))
        self.send(mk.head_timestamp(request.int("req_id", -1), stamp))

    def req_market_rule(self, request: Message) -> None:
        rule_id = request.int("market_rule_id", 0)
        self.send(mk.market_rule(rule_id, MARKET_RULES.get(rule_id, [])))

    # ------------------------------------------------------------ history

    def req_historical_data(self, request: Message) -> None:
        req_id = request.int("req_id", -1)
        inst = self._resolve(request)
        if inst is None:
            return
        f = request.fields
        refusal = self.s.gw.faults.history_refusal()  # a broken HMDS farm, pacing
        if refusal is not None:
            self.error(req_id, *refusal)
            return
        use_rth = str(f.get("use_rth", "")).strip().lower() in ("1", "true")  # absent in protobuf: false
        try:
            req = prices.parse_request(inst, str(f.get("end_date_time", "")), str(f.get("bar_size", "")),
                                       str(f.get("duration", "")), str(f.get("what_to_show", "")),
                                       str(f.get("format_date", "1")), use_rth=use_rth)
        except prices.HistoryError as exc:
            text = str(exc) if exc.code != 162 else prices.HMDS_PREFIX + str(exc)
            self.error(req_id, exc.code, text)
            return
        keep_up = str(f.get("keep_up_to_date", "")).lower() in ("1", "true")
        if keep_up and str(f.get("end_date_time", "")).strip():
            self.error(req_id, 321, KEEP_UP_TO_DATE_WITH_END)
            return
        rows = prices.bars(inst, req)
        if not rows and not keep_up:  # the span holds no session (a weekend, outside RTH)
            self.error(req_id, 162, prices.HMDS_PREFIX + prices.no_data_text(inst, req))
            return
        start, end = prices.window(req)
        self.send(mk.historical_data(self.sv, req_id, start, end, rows))
        if self.sv >= HISTORICAL_DATA_END:
            self.send(mk.historical_data_end(req_id, start, end))
        if keep_up:
            def update() -> list[list]:
                # The bar being built now; while the market is closed, the last bar of the latest session.
                now = prices.BarRequest(int(time.time()), req.bar_seconds, req.bar_seconds, req.what_to_show,
                                        req.format_date, req.time_zone, req.use_rth, "D", 1)
                latest = prices.bars(inst, now)
                return [mk.historical_data_update(req_id, latest[-1])] if latest else []

            self._stream(req_id, BAR_UPDATE_INTERVAL, update)

    # ------------------------------------------------------------ market data

    def req_market_data_type(self, request: Message) -> None:
        """No reply on a real Gateway; the type shapes later ticks."""
        value = request.int("market_data_type", 1)
        if value in (1, 2, 3, 4):
            self.data_type = value

    def req_mkt_data(self, request: Message) -> None:
        req_id = request.int("req_id", -1)
        inst = self._resolve(request)
        if inst is None:
            return
        delayed = self.data_type in (3, 4)
        self.send(mk.tick_req_params(req_id, inst.min_tick, inst.bbo_exchange, 3))
        if delayed:
            # A paper account without the subscription: the notice comes
            # first, then delayed ticks (rust-ibapi PR #672).
            self.error(req_id, *DELAYED_NOTICE)
        self.send(mk.market_data_type(req_id, self.data_type))
        snapshot = str(request.fields.get("snapshot", "")).lower() in ("1", "true")
        if self.s.gw.faults.quotes_blocked():  # a broken market data farm
            if snapshot:
                self.send(mk.tick_snapshot_end(req_id))  # a snapshot that cannot complete ends without prices
            return
        q = prices.quote(inst)
        ticks = DELAYED_TICKS if delayed else LIVE_TICKS
        self.send(mk.tick_price(req_id, ticks["bid"], q.bid, q.bid_size, 0))
        self.send(mk.tick_price(req_id, ticks["ask"], q.ask, q.ask_size, 0))
        if inst.contract.sec_type != "CASH":
            self.send(mk.tick_price(req_id, ticks["last"], q.last, q.last_size, 0))
        self.send(mk.tick_price(req_id, ticks["high"], q.high, "0", 0))
        self.send(mk.tick_price(req_id, ticks["low"], q.low, "0", 0))
        if inst.contract.sec_type != "CASH":
            self.send(mk.tick_size(req_id, ticks["volume"], q.volume))
        self.send(mk.tick_price(req_id, ticks["close"], q.close, "0", 0))
        self.send(mk.tick_price(req_id, ticks["open"], q.open, "0", 0))
        if snapshot:
            self.send(mk.tick_snapshot_end(req_id))
            return

        def ticks_now() -> list[list]:
            now = prices.quote(inst)
            out = [mk.tick_price(req_id, ticks["bid"], now.bid, now.bid_size, 0),
                   mk.tick_price(req_id, ticks["ask"], now.ask, now.ask_size, 0)]
            if inst.contract.sec_type != "CASH":
                out.append(mk.tick_price(req_id, ticks["last"], now.last, now.last_size, 0))
            return out

        self._stream(req_id, TICK_INTERVAL, ticks_now)

    # ------------------------------------------------------------ streams

    def _stream(self, req_id: int, interval: float, make: Callable[[], list[list]]) -> None:
        """Send make()'s messages every interval until cancelled or the
        connection closes (the task lives in the session's delayed-reply set)."""
        self.cancel_stream_id(req_id)
        if len(self.streams) >= MAX_STREAMS:
            self.error(req_id, *MAX_TICKERS)
            return
        origin = self.s._origin

        async def run() -> None:
            while True:
                await asyncio.sleep(interval)  # the data's schedule, as a Gateway streams it
                for fields in make():
                    self.s._send(fields, origin)
                await self.s._drain()

        task = asyncio.create_task(run())
        self.streams[req_id] = task
        self.s._later.add(task)
        task.add_done_callback(self.s._later.discard)

    def cancel_stream_id(self, req_id: int) -> None:
        task = self.streams.pop(req_id, None)
        if task is not None:
            task.cancel()

    def cancel_stream(self, request: Message) -> None:
        """cancelMktData / cancelHistoricalData: the stream stops; no reply, as on a Gateway."""
        self.cancel_stream_id(request.int("req_id", -1))

    # ------------------------------------------------------------ account

    def _accounts(self, wanted: str) -> list:
        return [a for a in self.s.gw.model.accounts if wanted in ("", "All", a.account_id)]

    def req_pnl(self, request: Message) -> None:
        req_id = request.int("req_id", -1)
        accounts = self._accounts(str(request.fields.get("account", "")))
        if not accounts:
            self.error(req_id, 321, "Error validating request.-'bB' : cause - Invalid account code")
            return
        unrealized = round(sum(h.unrealized_pnl for a in accounts for h in a.holdings), 2)
        daily = round(sum(_daily(h) for a in accounts for h in a.holdings), 2)
        self.send(mk.pnl(self.sv, req_id, daily, unrealized, 0.0))

    def req_pnl_single(self, request: Message) -> None:
        req_id = request.int("req_id", -1)
        con_id = request.int("con_id", 0)
        accounts = self._accounts(str(request.fields.get("account", "")))
        if not accounts:
            self.error(req_id, 321, "Error validating request.-'bB' : cause - Invalid account code")
            return
        held = [h for a in accounts for h in a.holdings if h.contract.con_id == con_id]
        if not held:
            if self.book.by_con_id(con_id) is None:
                self.error(req_id, *NO_SECURITY)
                return
            self.send(mk.pnl_single(self.sv, req_id, "0", 0.0, 0.0, 0.0, 0.0))
            return
        qty = sum(h.quantity for h in held)
        self.send(mk.pnl_single(self.sv, req_id, m.quantity_text(qty), round(sum(_daily(h) for h in held), 2),
                                round(sum(h.unrealized_pnl for h in held), 2), 0.0,
                                round(sum(h.market_value for h in held), 2)))

    def req_positions_multi(self, request: Message) -> None:
        req_id = request.int("req_id", -1)
        model_code = str(request.fields.get("model_code", ""))
        for account in self._accounts(str(request.fields.get("account", ""))):
            for h in account.holdings:
                c = h.contract
                contract_fields = [c.con_id, c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right,
                                   c.multiplier, c.exchange, c.currency, c.local_symbol, c.trading_class]
                self.send(mk.position_multi(req_id, account.account_id, contract_fields,
                                            m.quantity_text(h.quantity), h.avg_cost, model_code))
        self.send(mk.position_multi_end(req_id))

    def req_family_codes(self, request: Message) -> None:
        self.send(mk.family_codes([(a.account_id, "") for a in self.s.gw.model.accounts]))

    def req_user_info(self, request: Message) -> None:
        self.send(mk.user_info(request.int("req_id", -1), ""))

    def req_soft_dollar_tiers(self, request: Message) -> None:
        self.send(mk.soft_dollar_tiers(request.int("req_id", -1)))

    # ------------------------------------------------------------ reference lists

    def req_mkt_depth_exchanges(self, request: Message) -> None:
        self.send(mk.mkt_depth_exchanges([
            ("ISLAND", "STK", "NASDAQ", "Deep2", 7), ("ARCA", "STK", "NYSE", "Deep2", 7),
            ("CME", "FUT", "", "Deep", 3), ("IDEALPRO", "CASH", "", "Deep", 4)]))

    def req_smart_components(self, request: Message) -> None:
        self.send(mk.smart_components(request.int("req_id", -1), [
            (0, "NYSE", "N"), (1, "ARCA", "P"), (2, "NASDAQ", "Q"), (3, "BATS", "Z"), (4, "IEX", "V")]))

    def req_news_providers(self, request: Message) -> None:
        self.send(mk.news_providers([("BRFG", "Briefing.com General Market Columns"),
                                     ("BRFUPDN", "Briefing.com Analyst Actions"),
                                     ("DJNL", "Dow Jones Newsletters")]))

    def req_scanner_parameters(self, request: Message) -> None:
        self.send(mk.scanner_parameters(SCANNER_XML))


def _daily(holding: Holding) -> float:
    """Today's PnL of a holding: against a close 0.4% below its price (fixed)."""
    return holding.market_value - holding.market_value / 1.004


def commission_report(execution: Execution) -> list:
    """The commissionReport a Gateway sends after each execDetails."""
    return mk.commission_report(execution.exec_id, COMMISSION_PER_FILL, execution.contract.currency)


def record_unmodelled(session: Session, request: Message, req_id: int, code: int) -> None:
    entry = {"request": request.name, "msg_id": request.msg_id, "req_id": req_id, "fallback_code": code,
             "strict": bool(getattr(session.gw, "strict", False))}
    unmodelled = getattr(session.record, "unmodelled", None)
    if unmodelled is not None:
        unmodelled.append(entry)


def install(session: Session) -> None:
    """Register the desk's handlers in the session's table; the session's
    own handlers win (the account flow stays where it is)."""
    desk = MarketDesk(session)
    session.desk = desk
    for out_id, handler in desk.handlers().items():
        if out_id == 59:
            session._handlers[out_id] = handler  # the session ignored it; the type shapes ticks now
        else:
            session._handlers.setdefault(out_id, handler)
    for out_id, handler in desk.fallback_handlers().items():
        session._handlers.setdefault(out_id, handler)
