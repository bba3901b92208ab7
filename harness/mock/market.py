"""Deterministic prices for the mock: historical bars and snapshot ticks.

Why derived from (symbol, bar time) by a hash rather than a random walk
from a seed: any window of bars, at any bar size, ending at any time, gives
the same price at the same instant on every run, profile and client, so two
runs' evidence compares bar for bar; no clock or network is read except the
"now" a request leaves empty (a real Gateway's end time is "now" too).
Which bars exist follows the trading calendar (trading_calendar.py):
useRTH, sessions per instrument, no bars on weekends.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..core.errors import HarnessError
from .instruments import Instrument
from .trading_calendar import EASTERN, EASTERN_NAMES, UTC_NAMES, calendar_kind, intraday_starts, sessions_before

# The bar sizes the API accepts (reqHistoricalData barSizeSetting), in seconds.
BAR_SIZES: dict[str, int] = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900,
    "20 mins": 1200, "30 mins": 1800, "1 hour": 3600, "2 hours": 7200, "3 hours": 10800,
    "4 hours": 14400, "8 hours": 28800, "1 day": 86400, "1 week": 604800, "1 month": 2592000,
}
_DURATION = re.compile(r"^\s*(\d+)\s+([SDWMY])\s*$")
_DURATION_UNITS = {"S": 1, "D": 86400, "W": 604800, "M": 2592000, "Y": 31536000}
MAX_BARS = 10_000  # more than this in one answer is refused, as HMDS refuses too long a step span
HMDS_PREFIX = "Historical Market Data Service error message:"


class HistoryError(HarnessError, ValueError):
    """A request HMDS refuses: the text follows HMDS_PREFIX in error 162 (or 321 for a bad field)."""

    def __init__(self, text: str, code: int = 162) -> None:
        super().__init__(text)
        self.code = code


@dataclass(frozen=True)
class BarRequest:
    end_epoch: int
    bar_seconds: int
    duration_seconds: int
    what_to_show: str
    format_date: int
    time_zone: str
    use_rth: bool = True
    duration_unit: str = "S"  # D/W/M/Y count trading days or calendar spans; S is seconds of clock time
    duration_count: int = 0


def parse_request(inst: Instrument, end: str, bar_size: str, duration: str, what_to_show: str,
                  format_date: str, now: float | None = None, use_rth: bool = True) -> BarRequest:
    """Validate a reqHistoricalData request as HMDS does; HistoryError otherwise."""
    bar_seconds = BAR_SIZES.get(bar_size.strip())
    if bar_seconds is None:
        raise HistoryError("Error validating request.-'bS' : cause - Historical data bar size setting is invalid.",
                           321)
    match = _DURATION.match(duration or "")
    if match is None:
        raise HistoryError("Error validating request.-'bS' : cause - Historical data duration format is invalid.",
                           321)
    duration_seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    what = (what_to_show or "").strip().upper()
    if what not in inst.what_to_show:
        raise HistoryError(f"No historical market data for {inst.symbol}/{inst.contract.sec_type}@"
                           f"{inst.exchange} {what.title() or 'Unspecified'}")
    if duration_seconds // bar_seconds > MAX_BARS:
        raise HistoryError("Time length exceed max.")
    if duration_seconds < bar_seconds and match.group(2) == "S":
        raise HistoryError("Duration is shorter than the bar size.")
    return BarRequest(parse_end(end, now), bar_seconds, max(duration_seconds, bar_seconds), what,
                      2 if str(format_date).strip() == "2" else 1, inst.time_zone, use_rth, match.group(2),
                      int(match.group(1)))


def parse_end(text: str, now: float | None = None) -> int:
    """End time: empty means now; 'yyyyMMdd HH:mm:ss[ zone]' or 'yyyyMMdd-HH:mm:ss' (UTC).

    A New York zone name (US/Eastern, America/New_York) is New York wall
    time (trading_calendar.Eastern: no tz database needed); UTC/GMT and no
    zone are UTC; any other zone needs the tz database, and a zone it does
    not know is refused (321) as a Gateway refuses one."""
    text = (text or "").strip()
    if not text:
        return int(time.time() if now is None else now)
    stamp = text.replace("-", " ", 1) if re.match(r"^\d{8}-", text) else text
    parts = stamp.split(" ")
    try:
        moment = datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
    except ValueError:
        try:
            moment = datetime.strptime(parts[0], "%Y%m%d")
        except ValueError:
            raise HistoryError("Error validating request.-'bS' : cause - End date/time format is invalid.",
                               321) from None
    zone = parts[2] if len(parts) > 2 else ""
    if zone in EASTERN_NAMES:
        return EASTERN.epoch(moment)
    if zone and zone not in UTC_NAMES:
        return _zoned(moment, zone)
    return int(moment.replace(tzinfo=timezone.utc).timestamp())


def _zoned(moment: datetime, zone: str) -> int:
    try:
        from zoneinfo import ZoneInfo

        return int(moment.replace(tzinfo=ZoneInfo(zone)).timestamp())
    except Exception:  # noqa: BLE001 - unknown zone, or no tz database for it
        raise HistoryError(f"Error validating request.-'bS' : cause - Invalid time zone {zone!r}.", 321) from None


def _unit(symbol: str, what: str, t: int) -> float:
    digest = hashlib.blake2b(f"{symbol}|{what}|{t}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def price_at(inst: Instrument, t: int) -> float:
    """The instrument's price at epoch second t: a slow deterministic wave
    around its reference price plus a small hashed wiggle, on its tick grid."""
    day = t // 86400
    drift = (_unit(inst.symbol, "day", day) - 0.5) * 0.04
    wiggle = (_unit(inst.symbol, "sec", t // 60) - 0.5) * 0.004
    return _on_tick(inst, inst.price * (1 + drift + wiggle))


def _on_tick(inst: Instrument, value: float) -> float:
    ticks = max(1, round(value / inst.min_tick))
    return round(ticks * inst.min_tick, 6)


def bar_starts(inst: Instrument, req: BarRequest) -> list[int]:
    """The start of every bar the request covers, oldest first, on the
    instrument's trading calendar: D counts trading days back from the end
    time; S, W, M and Y cover that span of clock time; bars of a day or
    more are one per trade date (week / month: the first trade date of
    each week / month); nothing outside a session."""
    kind = calendar_kind(inst.contract.sec_type)
    end, step = req.end_epoch, req.bar_seconds
    if req.duration_unit == "D":
        count = max(1, req.duration_count or req.duration_seconds // 86400)
        days = sessions_before(kind, req.use_rth, end, EASTERN, max_days=count * 2 + 14)  # weekends between
        chosen = [d for _, d in zip(range(count), days)]
        since = None
    else:
        since = end - req.duration_seconds
        days = sessions_before(kind, req.use_rth, end, EASTERN, max_days=req.duration_seconds // 86400 + 14)
        chosen = []
        for day in days:
            if day[1][1] <= since:
                break
            chosen.append(day)
    chosen.reverse()
    if step >= 86400:
        starts: list[int] = []
        seen: set[tuple[int, int]] = set()
        for trade_date, session in chosen:
            key = ((trade_date.toordinal(), 0) if step == 86400 else trade_date.isocalendar()[:2] if step == 604800
                   else (trade_date.year, trade_date.month))
            if key not in seen:
                seen.add(key)
                starts.append(session[0])
        return starts[-MAX_BARS:]
    starts = [t for _, session in chosen for t in intraday_starts(session, step, EASTERN)]
    if since is not None:
        starts = [t for t in starts if t + step > since]
    return starts[-MAX_BARS:]


def bars(inst: Instrument, req: BarRequest) -> list[tuple[str, float, float, float, float, str, str, int]]:
    """(date, open, high, low, close, volume, wap, count), oldest first; [] when
    the span holds no session (the caller answers HMDS's 'no data' 162)."""
    step = req.bar_seconds
    out = []
    for start in bar_starts(inst, req):
        o = price_at(inst, start)
        c = price_at(inst, start + step - 1)
        spread = inst.price * 0.001 * (1 + _unit(inst.symbol, "range", start))
        h = _on_tick(inst, max(o, c) + spread)
        low = _on_tick(inst, max(inst.min_tick, min(o, c) - spread))
        if req.what_to_show in ("MIDPOINT", "BID", "ASK", "BID_ASK") or inst.contract.sec_type == "CASH":
            volume, wap, n = "-1", "-1", -1  # quotes carry no volume
        else:
            n = 1 + int(_unit(inst.symbol, "count", start) * 500 * max(1, step // 60))
            volume = str(n * 100)
            wap = f"{_on_tick(inst, (o + h + low + c) / 4):.4f}".rstrip("0").rstrip(".")
        out.append((_bar_date(start, step, req, inst), o, h, low, c, volume, wap, n))
    return out


def no_data_text(inst: Instrument, req: BarRequest) -> str:
    """HMDS's answer to a span without a session (a weekend, outside RTH)."""
    return f"HMDS query returned no data: {inst.symbol}@{inst.exchange} {req.what_to_show.title()}"


def _bar_date(start: int, step: int, req: BarRequest, inst: Instrument | None = None) -> str:
    if step >= 86400:  # the trade date (a Globex / FX session begins the evening before it)
        local = EASTERN.local(start)
        if inst is not None and calendar_kind(inst.contract.sec_type) in ("globex", "fx") and local.hour >= 17:
            local += timedelta(days=1)
        return local.strftime("%Y%m%d")
    moment = datetime.fromtimestamp(start, timezone.utc)
    if req.format_date == 2:
        return str(start)
    return moment.strftime("%Y%m%d %H:%M:%S") + " UTC"


def window(req: BarRequest) -> tuple[str, str]:
    """historicalDataEnd's start and end strings (yyyyMMdd HH:mm:ss zone)."""
    end = datetime.fromtimestamp(req.end_epoch, timezone.utc)
    start = end - timedelta(seconds=req.duration_seconds)
    return start.strftime("%Y%m%d %H:%M:%S") + " UTC", end.strftime("%Y%m%d %H:%M:%S") + " UTC"


@dataclass(frozen=True)
class Quote:
    bid: float
    ask: float
    last: float
    close: float
    open: float
    high: float
    low: float
    bid_size: str
    ask_size: str
    last_size: str
    volume: str


def quote(inst: Instrument, now: float | None = None) -> Quote:
    """A snapshot: last from the price function at 'now', bid/ask one tick around it."""
    t = int(time.time() if now is None else now)
    last = price_at(inst, t)
    day_start = t - t % 86400
    close = price_at(inst, day_start - 1)
    day_open = price_at(inst, day_start)
    hi = max(last, day_open, close) + inst.min_tick * 10
    lo = max(inst.min_tick, min(last, day_open, close) - inst.min_tick * 10)
    size = 1 + int(_unit(inst.symbol, "size", t // 60) * 9)
    return Quote(_on_tick(inst, last - inst.min_tick), _on_tick(inst, last + inst.min_tick), last, close, day_open,
                 _on_tick(inst, hi), _on_tick(inst, lo), str(size * 100), str(size * 100 + 100), str(size),
                 str(10_000 + size * 1000))
