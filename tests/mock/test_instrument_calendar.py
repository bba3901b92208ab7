"""Historical bars on a trading calendar, contract ids, positions and account-summary order,
through the real clients (ib_async, the official ibapi), unmodified.

Why: an app's chart, its position table and its account panel must look on
the mock as they do on a real Gateway: RTH bars 09:30-16:00 New York with
useRTH=1, the extended session with useRTH=0, nothing on a weekend; ES on
Globex hours with its daily halt, EUR.USD around the clock from Sunday
evening; positions on their primary exchange (AAPL NASDAQ, SPY ARCA, as
the public rust-ibapi capture shows); summary rows in the order the public
capture shows (alphabetical). Every wait is an event or a bounded join.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone
from typing import Any

import pytest

from harness.mock import MockGateway
from harness.mock import market as market_mod
from harness.mock import trading_calendar as cal
from harness.mock.instruments import (
    AAPL,
    ES,
    EURUSD,
    SYNTHETIC_CON_IDS,
    InstrumentBook,
)
from harness.mock.market import bars, parse_request
from harness.mock.paper_account import SUMMARY_TAGS, UNANSWERED_TAGS
from harness.mock.trading_calendar import EDT, EST, Eastern, rule_offset

HOST = "127.0.0.1"
TIMEOUT = 10.0
STABLE_IDS = {"AAPL": 265598, "MSFT": 272093, "SPY": 756733, "EUR": 12087792}

# Fri 2026-12-04 (a trading day), Sat 12-05, Sun 12-06, Mon 12-07.
FRIDAY_CLOSE = "20261204 16:00:00 US/Eastern"


def _ny(epoch: int) -> datetime:
    """New York wall time by the in-code rule: independent of the tz database."""
    return datetime.fromtimestamp(epoch + rule_offset(epoch), timezone.utc).replace(tzinfo=None)


def _epoch_of_bar(date_text: str) -> int:
    stamp, _, zone = date_text.partition(" UTC")
    assert zone == "" and date_text.endswith(" UTC"), date_text
    return int(datetime.strptime(stamp, "%Y%m%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


# ------------------------------------------------------------------ time zone without a tz database


def test_us_dst_rule_known_change_overs() -> None:
    # 2026: DST from Sun 03-08 07:00 UTC (02:00 EST) to Sun 11-01 06:00 UTC (02:00 EDT).
    at = lambda text: int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc).timestamp())  # noqa: E731
    assert rule_offset(at("2026-03-08 06:59")) == EST and rule_offset(at("2026-03-08 07:00")) == EDT
    assert rule_offset(at("2026-11-01 05:59")) == EDT and rule_offset(at("2026-11-01 06:00")) == EST
    assert rule_offset(at("2026-07-01 12:00")) == EDT and rule_offset(at("2026-12-07 12:00")) == EST
    assert rule_offset(at("2027-03-14 07:00")) == EDT  # second Sunday of March 2027


def test_rule_agrees_with_zoneinfo_every_hour_around_each_change_over() -> None:
    zoned = Eastern()
    if zoned.zone is None:
        pytest.skip("no tz database here: the rule is the only source (checked by the other tests)")
    for year in range(2007, 2038):
        for month, day in ((3, 1), (11, 1)):
            start = int(datetime(year, month, day, tzinfo=timezone.utc).timestamp())
            for hour in range(0, 24 * 16):
                t = start + hour * 3600
                assert zoned.offset(t) == rule_offset(t), datetime.fromtimestamp(t, timezone.utc)


def test_without_tzdata_the_calendar_falls_back_to_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    import zoneinfo

    def missing(key: str) -> Any:
        raise zoneinfo.ZoneInfoNotFoundError(f"No time zone found with key {key}")

    monkeypatch.setattr(zoneinfo, "ZoneInfo", missing)
    fallback = Eastern()
    assert fallback.zone is None and fallback.source == "us-dst-rule"
    with_zone = bars(AAPL, parse_request(AAPL, FRIDAY_CLOSE, "5 mins", "1 D", "TRADES", "1"))
    monkeypatch.setattr(market_mod, "EASTERN", fallback)  # bars computed through the rule alone
    without = bars(AAPL, parse_request(AAPL, FRIDAY_CLOSE, "5 mins", "1 D", "TRADES", "1"))
    assert without == with_zone and len(without) == 78
    assert fallback.epoch(datetime(2026, 7, 1, 9, 30)) == int(datetime(2026, 7, 1, 13, 30,
                                                                         tzinfo=timezone.utc).timestamp())


# ------------------------------------------------------------------ the calendar, deterministic


@pytest.mark.parametrize(("use_rth", "first", "last", "count"), [(True, "09:30", "15:55", 78),
                                                                  (False, "04:00", "19:55", 192)])
def test_stock_day_follows_use_rth(use_rth: bool, first: str, last: str, count: int) -> None:
    rows = bars(AAPL, parse_request(AAPL, "20261204 23:00:00 US/Eastern", "5 mins", "1 D", "TRADES", "1",
                                    use_rth=use_rth))
    times = [_ny(_epoch_of_bar(r[0])) for r in rows]
    assert len(rows) == count and {t.date() for t in times} == {datetime(2026, 12, 4).date()}
    assert (times[0].strftime("%H:%M"), times[-1].strftime("%H:%M")) == (first, last)


def test_no_bars_on_a_weekend_and_the_day_before_is_friday() -> None:
    sunday_noon = "20261206 12:00:00 US/Eastern"
    assert bars(AAPL, parse_request(AAPL, sunday_noon, "1 hour", "86400 S", "TRADES", "1")) == []
    rows = bars(AAPL, parse_request(AAPL, sunday_noon, "1 hour", "2 D", "TRADES", "1"))
    days = sorted({_ny(_epoch_of_bar(r[0])).strftime("%a %d") for r in rows})
    assert days == ["Fri 04", "Thu 03"]


def test_es_trades_globex_hours_with_the_daily_halt() -> None:
    rows = bars(ES, parse_request(ES, "20261209 12:00:00 US/Eastern", "15 mins", "3 D", "TRADES", "1",
                                  use_rth=False))
    times = [_ny(_epoch_of_bar(r[0])) for r in rows]
    assert times[0] == datetime(2026, 12, 6, 18, 0)  # Monday's session opens Sunday 18:00
    assert not [t for t in times if t.hour == 17]  # the 17:00-18:00 halt
    assert not [t for t in times if t.weekday() == 5 or (t.weekday() == 6 and t.hour < 18)]
    assert datetime(2026, 12, 7, 16, 45) in times and datetime(2026, 12, 7, 18, 0) in times
    assert times[-1] == datetime(2026, 12, 9, 11, 45)
    rth = bars(ES, parse_request(ES, "20261209 12:00:00 US/Eastern", "15 mins", "1 D", "TRADES", "1",
                                 use_rth=True))
    assert [_ny(_epoch_of_bar(r[0])).strftime("%H:%M") for r in rth][:2] == ["09:30", "09:45"]


def test_eurusd_trades_from_sunday_evening_to_friday_17() -> None:
    rows = bars(EURUSD, parse_request(EURUSD, "20261207 00:00:00 US/Eastern", "1 hour", "4 D", "MIDPOINT", "1"))
    times = [_ny(_epoch_of_bar(r[0])) for r in rows]
    assert datetime(2026, 12, 6, 17, 15) in times and datetime(2026, 12, 6, 18, 0) in times
    fridays = [t for t in times if t.weekday() == 4]
    assert max(fridays) == datetime(2026, 12, 4, 16, 0)  # the last bar before Friday 17:00
    assert not [t for t in times if t.weekday() == 5]
    assert not [t for t in times if t.hour == 17 and t.minute < 15]  # the 17:00-17:15 break


def test_bars_are_a_function_of_the_end_time_only() -> None:
    a = bars(AAPL, parse_request(AAPL, FRIDAY_CLOSE, "1 min", "1 D", "TRADES", "1", now=1.0))
    b = bars(AAPL, parse_request(AAPL, FRIDAY_CLOSE, "1 min", "1 D", "TRADES", "1", now=2_000_000_000.0))
    assert a == b and len(a) == 390


def test_daily_bars_are_trade_dates() -> None:
    rows = bars(ES, parse_request(ES, "20261207 12:00:00 US/Eastern", "1 day", "3 D", "TRADES", "1",
                                  use_rth=False))
    assert [r[0] for r in rows] == ["20261203", "20261204", "20261207"]


# ------------------------------------------------------------------ contract ids


def test_stable_ids_are_the_real_ones_and_synthetic_ids_cannot_collide() -> None:
    book = InstrumentBook.default()
    by_symbol = {i.symbol: i.contract.con_id for i in book.underlyings()}
    for symbol, con_id in STABLE_IDS.items():
        assert by_symbol[symbol] == con_id, symbol
    synthetic = [i.contract.con_id for i in book.instruments if i.contract.sec_type in ("FUT", "OPT")]
    assert ES.contract.con_id in synthetic and len(set(synthetic)) == len(synthetic)
    assert all(c in SYNTHETIC_CON_IDS for c in synthetic)
    assert not any(v in SYNTHETIC_CON_IDS for v in STABLE_IDS.values())
    assert 637533641 not in synthetic  # rust-ibapi's capture: the real ESU5 id
    assert max(SYNTHETIC_CON_IDS) < 2**31  # a conId is a Java int / protobuf int32


# ------------------------------------------------------------------ real clients


async def test_ib_async_bars_follow_the_calendar_and_a_weekend_gets_162() -> None:
    from ib_async import IB, Contract

    async with MockGateway(host=HOST, port=0) as gw:
        ib = IB()
        await ib.connectAsync(HOST, gw.port, clientId=61, timeout=TIMEOUT)
        errors: list[tuple[int, str]] = []
        ib.errorEvent += lambda req_id, code, text, *rest: errors.append((code, text))
        try:
            aapl = Contract(conId=265598, exchange="SMART")
            rth = await ib.reqHistoricalDataAsync(aapl, FRIDAY_CLOSE, "1 D", "30 mins", "TRADES", True,
                                                  timeout=TIMEOUT)
            ext = await ib.reqHistoricalDataAsync(aapl, FRIDAY_CLOSE, "1 D", "1 hour", "TRADES", False,
                                                  timeout=TIMEOUT)
            es = await ib.reqHistoricalDataAsync(Contract(conId=ES.contract.con_id), "20261207 12:00:00 US/Eastern",
                                                 "2 D", "1 hour", "TRADES", False, timeout=TIMEOUT)
            weekend = await ib.reqHistoricalDataAsync(aapl, "20261206 12:00:00 US/Eastern", "3600 S", "5 mins",
                                                      "TRADES", True, timeout=TIMEOUT)
        finally:
            ib.disconnect()
    local = lambda bar: _ny(int(bar.date.timestamp()))  # noqa: E731 - ib_async parses 'yyyyMMdd HH:mm:ss UTC'
    assert [local(b).strftime("%H:%M") for b in rth][:2] == ["09:30", "10:00"] and len(rth) == 13
    assert local(rth[-1]) == datetime(2026, 12, 4, 15, 30)
    assert (local(ext[0]).strftime("%H:%M"), local(ext[-1]).strftime("%H:%M")) == ("04:00", "15:00")
    es_times = [local(b) for b in es]
    assert es_times[0] == datetime(2026, 12, 3, 18, 0) and datetime(2026, 12, 6, 18, 0) in es_times
    assert not [t for t in es_times if t.weekday() == 5 or t.hour == 17]
    assert len(weekend) == 0 and any(code == 162 and "returned no data" in text for code, text in errors), errors


@pytest.mark.parametrize("profile", ["10.19", "10.50"])  # text form (157..178 era) and protobuf (>= 208)
async def test_ibapi_bars_positions_and_summary_order(profile: str) -> None:
    async with MockGateway(host=HOST, port=0, profile=profile) as gw:
        gw.clear_fault()
        got = await asyncio.to_thread(_ibapi_session, gw.port)
    rth, ext = got["rth"], got["ext"]
    assert len(rth) == 13 and _ny(_epoch_of_bar(rth[0])) == datetime(2026, 12, 4, 9, 30)
    assert _ny(_epoch_of_bar(ext[0])) == datetime(2026, 12, 4, 4, 0)
    assert _ny(_epoch_of_bar(ext[-1])) == datetime(2026, 12, 4, 19, 0)  # 16 hourly bars, 04:00-19:00
    assert got["positions"]["AAPL"] == ("NASDAQ", 265598) and got["positions"]["SPY"] == ("ARCA", 756733)
    assert got["positions"]["EUR"] == ("", 12087792)
    assert got["positions_multi"] == got["positions"]
    tags = [tag for tag, _ in got["summary"]]
    assert tags == sorted(tags) and set(SUMMARY_TAGS) - set(UNANSWERED_TAGS) <= set(tags)
    ledger = [(tag, cur) for tag, cur in got["summary"] if tag == "CashBalance"]
    assert ledger == [("CashBalance", "BASE"), ("CashBalance", "USD")]


def _ibapi_session(port: int) -> dict[str, Any]:
    """A program on the official client, written as its users write one."""
    from ibapi.client import EClient
    from ibapi.contract import Contract
    from ibapi.wrapper import EWrapper

    class App(EWrapper, EClient):
        def __init__(self) -> None:
            EWrapper.__init__(self)
            EClient.__init__(self, self)
            self.ready = threading.Event()
            self.done: dict[int, threading.Event] = {i: threading.Event() for i in (1, 2, 3, 4, 5)}
            self.bars: dict[int, list[str]] = {1: [], 2: []}
            self.positions: dict[str, tuple[str, int]] = {}
            self.multi: dict[str, tuple[str, int]] = {}
            self.summary: list[tuple[str, str]] = []

        def nextValidId(self, orderId: int) -> None:  # noqa: N802, N803 - ibapi's names
            self.ready.set()

        def historicalData(self, reqId: int, bar: Any) -> None:  # noqa: N802, N803
            self.bars[reqId].append(bar.date)

        def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N802, N803
            self.done[reqId].set()

        def position(self, account: str, contract: Any, position: Any, avgCost: float) -> None:  # noqa: N802, N803
            self.positions[contract.symbol] = (contract.exchange, contract.conId)

        def positionEnd(self) -> None:  # noqa: N802
            self.done[3].set()

        def positionMulti(self, reqId: int, account: str, modelCode: str, contract: Any, pos: Any,  # noqa: N802, N803
                          avgCost: float) -> None:
            self.multi[contract.symbol] = (contract.exchange, contract.conId)

        def positionMultiEnd(self, reqId: int) -> None:  # noqa: N802, N803
            self.done[4].set()

        def accountSummary(self, reqId: int, account: str, tag: str, value: str, currency: str) -> None:  # noqa: N802, N803
            self.summary.append((tag, currency))

        def accountSummaryEnd(self, reqId: int) -> None:  # noqa: N802, N803
            self.done[5].set()

        def error(self, *args: Any) -> None:  # farm notices; failures show as missing events
            pass

    app = App()
    app.connect(HOST, port, 62)
    runner = threading.Thread(target=app.run, name="ibapi-calendar-test", daemon=True)
    runner.start()
    try:
        assert app.ready.wait(TIMEOUT), "nextValidId never arrived"
        aapl = Contract()
        aapl.conId, aapl.exchange = 265598, "SMART"
        app.reqHistoricalData(1, aapl, FRIDAY_CLOSE, "1 D", "30 mins", "TRADES", 1, 1, False, [])
        app.reqHistoricalData(2, aapl, FRIDAY_CLOSE.replace("16:00", "23:00"), "1 D", "1 hour", "TRADES", 0, 1,
                              False, [])
        app.reqPositions()
        app.reqPositionsMulti(4, "", "")
        app.reqAccountSummary(5, "All", ",".join(SUMMARY_TAGS) + ",$LEDGER:ALL")
        for key, event in app.done.items():
            assert event.wait(TIMEOUT), f"request {key} never ended"
        return {"rth": app.bars[1], "ext": app.bars[2], "positions": app.positions, "positions_multi": app.multi,
                "summary": app.summary}
    finally:
        app.disconnect()
        runner.join(5.0)
        assert not runner.is_alive(), "ibapi's run thread did not end"


async def test_ib_async_positions_and_portfolio_carry_the_primary_exchange() -> None:
    from ib_async import IB

    async with MockGateway(host=HOST, port=0) as gw:
        ib = IB()
        await ib.connectAsync(HOST, gw.port, clientId=63, timeout=TIMEOUT)
        try:
            positions = await asyncio.wait_for(ib.reqPositionsAsync(), TIMEOUT)
            portfolio = ib.portfolio()
        finally:
            ib.disconnect()
    by_symbol = {p.contract.symbol: p.contract for p in positions}
    assert (by_symbol["AAPL"].exchange, by_symbol["SPY"].exchange, by_symbol["EUR"].exchange) == ("NASDAQ", "ARCA", "")
    primaries = {item.contract.symbol: item.contract.primaryExchange for item in portfolio}
    assert primaries["AAPL"] == "NASDAQ" and primaries["SPY"] == "ARCA"


def test_summary_rows_are_alphabetical_whatever_the_request_order() -> None:
    from harness.mock.model import AccountModel

    account = AccountModel.default().accounts[0]
    rows = account.summary(["TotalCashValue", "NetLiquidation", "GrossPositionValue"])
    assert [r[0] for r in rows] == ["GrossPositionValue", "NetLiquidation", "TotalCashValue"]  # as rust-ibapi's capture
    again = account.summary(["NetLiquidation", "NetLiquidation", "$LEDGER:ALL", "AccruedCash"])
    assert len(again) == len({(t, c) for t, _, c in again})  # one row per (tag, currency)


def test_calendar_helpers_agree_on_session_edges() -> None:
    friday_0930 = cal.EASTERN.epoch(datetime(2026, 12, 4, 9, 30))
    assert cal.in_session("equity", True, friday_0930) and not cal.in_session("equity", True, friday_0930 - 1)
    assert cal.in_session("equity", False, friday_0930 - 1)
    sunday_1800 = cal.EASTERN.epoch(datetime(2026, 12, 6, 18, 0))
    assert cal.in_session("globex", False, sunday_1800) and not cal.in_session("globex", False, sunday_1800 - 1)
    assert not cal.in_session("fx", False, cal.EASTERN.epoch(datetime(2026, 12, 6, 17, 0)))
    assert cal.in_session("fx", False, cal.EASTERN.epoch(datetime(2026, 12, 6, 17, 15)))
    friday_1700 = cal.EASTERN.epoch(datetime(2026, 12, 4, 17, 0))
    assert cal.in_session("fx", False, friday_1700 - 1) and not cal.in_session("fx", False, friday_1700)


def _hours_periods(text: str, central: bool) -> list[tuple[int, int]]:
    """contractDetails' tradingHours / liquidHours as epoch periods (the book's zones: US/Eastern, US/Central;
    Chicago is always one hour behind New York, both on the US DST rule)."""
    shift = 3600 if central else 0
    out = []
    for part in text.split(";"):
        if "CLOSED" in part:
            continue
        start, end = part.split("-")
        out.append(tuple(cal.EASTERN.epoch(datetime.strptime(x, "%Y%m%d:%H%M")) + shift for x in (start, end)))
    return out  # type: ignore[return-value]


@pytest.mark.parametrize("inst", [AAPL, ES, EURUSD], ids=lambda i: i.symbol)
def test_the_calendar_matches_the_hours_contract_details_report(inst: Any) -> None:
    central = inst.time_zone == "US/Central"
    kind = cal.calendar_kind(inst.contract.sec_type)
    for use_rth, text in ((False, inst.trading_hours), (True, inst.liquid_hours)):
        periods = _hours_periods(text, central)
        sessions = [cal.session_for(kind, use_rth, datetime(2026, 12, d).date()) for d in range(7, 12)]
        assert periods == sessions, (inst.symbol, use_rth)


def test_a_long_daily_request_covers_its_whole_span() -> None:
    rows = bars(AAPL, parse_request(AAPL, FRIDAY_CLOSE, "1 day", "5 Y", "TRADES", "1"))
    assert rows[0][0] == "20211206" and rows[-1][0] == "20261204"
    assert len(rows) == 1305  # every weekday of five years (holidays are not modelled)
