"""Deterministic prices for the mock: historical bars and snapshot ticks.

Why derived from (symbol, bar time) by a hash rather than a random walk
from a seed: any window of bars, at any bar size, ending at any time, gives
the same price at the same instant on every run, profile and client, so two
runs' evidence compares bar for bar; no clock or network is read except the
"now" a request leaves empty (a real Gateway's end time is "now" too).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..core.errors import HarnessError
from .instruments import Instrument

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


def parse_request(inst: Instrument, end: str, bar_size: str, duration: str, what_to_show: str,
                  format_date: str, now: float | None = None) -> BarRequest:
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
                      2 if str(format_date).strip() == "2" else 1, inst.time_zone)


def parse_end(text: str, now: float | None = None) -> int:
    """End time: empty means now; 'yyyyMMdd HH:mm:ss[ zone]' or 'yyyyMMdd-HH:mm:ss' (UTC)."""
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
    return int(moment.replace(tzinfo=timezone.utc).timestamp())


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


def bars(inst: Instrument, req: BarRequest) -> list[tuple[str, float, float, float, float, str, str, int]]:
    """(date, open, high, low, close, volume, wap, count), oldest first."""
    step = req.bar_seconds
    last_start = req.end_epoch - req.end_epoch % step if step < 86400 else req.end_epoch - req.end_epoch % 86400
    count = max(1, req.duration_seconds // step)
    out = []
    for i in range(count - 1, -1, -1):
        start = last_start - i * step
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
        out.append((_bar_date(start, step, req), o, h, low, c, volume, wap, n))
    return out


def _bar_date(start: int, step: int, req: BarRequest) -> str:
    moment = datetime.fromtimestamp(start, timezone.utc)
    if step >= 86400:
        return moment.strftime("%Y%m%d")
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
