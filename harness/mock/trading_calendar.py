"""The trading calendar historical bars follow: sessions per instrument, in New York time.

Why: an app that asks for "1 D" of 5-minute bars with useRTH=1 gets the
78 bars 09:30-16:00 of the last trading day from a real Gateway, none on a
Saturday, and a chart that plots what the mock sends must look the same.
The calendar is derived from the request's end time only (no wall clock),
so the same request gives the same bars on every run.

Sessions (America/New_York, Monday to Friday trade dates; exchange holidays
are not modelled):

* US stocks and ETFs: regular hours 09:30-16:00; with useRTH=0 the
  extended session 04:00-20:00 (pre-market and after-hours);
* US equity options: 09:30-16:00 whatever useRTH says;
* ES (CME Globex): trade date D runs from D-1 18:00 to D 17:00, i.e.
  Sunday 18:00 to Friday 17:00 with the daily 17:00-18:00 halt; with
  useRTH=1 only the regular session 09:30-16:00 (08:30-15:00 Chicago);
* EUR.USD (IDEALPRO): trade date D runs from D-1 17:15 to D 17:00, i.e.
  about 24 h from Sunday 17:15 to Friday 17:00; useRTH does not narrow it
  (IDEALPRO's liquid hours are its trading hours).

Time zone: zoneinfo's America/New_York when the system has the tz database;
the python3 image may lack it (no tzdata package), so the fallback is the
US daylight-saving rule in code (since 2007: from the second Sunday of
March 02:00 EST to the first Sunday of November 02:00 EDT, Energy Policy
Act of 2005). tests/mock/test_instrument_calendar.py checks both agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

EST = -5 * 3600
EDT = -4 * 3600
NEW_YORK = "America/New_York"
EASTERN_NAMES = frozenset({"US/Eastern", "America/New_York", "EST5EDT", "EST", "EDT", "ET"})
UTC_NAMES = frozenset({"UTC", "GMT", "Etc/UTC", "Etc/GMT", "Z"})

Session = tuple[int, int]  # [start, end) in epoch seconds


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    first_sunday = first + timedelta(days=(6 - first.weekday()) % 7)
    return first_sunday + timedelta(weeks=n - 1)


def rule_offset(epoch: int) -> int:
    """New York's UTC offset (seconds) at epoch, by the US rule in code (no tz database)."""
    year = datetime.fromtimestamp(epoch, timezone.utc).year
    start = datetime.combine(_nth_sunday(year, 3, 2), datetime.min.time(), timezone.utc) + timedelta(hours=2 - EST // 3600)
    end = datetime.combine(_nth_sunday(year, 11, 1), datetime.min.time(), timezone.utc) + timedelta(hours=2 - EDT // 3600)
    return EDT if start.timestamp() <= epoch < end.timestamp() else EST


def _load_zone() -> Any:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(NEW_YORK)
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, or no tz database at all: use the rule
        return None


class Eastern:
    """Epoch <-> New York wall time; zoneinfo when present, else the rule."""

    def __init__(self, use_zoneinfo: bool = True) -> None:
        self.zone = _load_zone() if use_zoneinfo else None

    @property
    def source(self) -> str:
        return "zoneinfo" if self.zone is not None else "us-dst-rule"

    def offset(self, epoch: int) -> int:
        if self.zone is None:
            return rule_offset(epoch)
        delta = datetime.fromtimestamp(epoch, timezone.utc).astimezone(self.zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else rule_offset(epoch)

    def local(self, epoch: int) -> datetime:
        """Naive New York wall time at epoch."""
        return datetime.fromtimestamp(epoch + self.offset(epoch), timezone.utc).replace(tzinfo=None)

    def epoch(self, wall: datetime) -> int:
        """Epoch of a naive New York wall time (session edges never fall in the 02:00 change-over)."""
        naive = int(wall.replace(tzinfo=timezone.utc).timestamp())
        for guess in (EDT, EST):
            if self.offset(naive - guess) == guess:
                return naive - guess
        return naive - EST


EASTERN = Eastern()


def calendar_kind(sec_type: str) -> str:
    return {"STK": "equity", "OPT": "option", "FUT": "globex", "CASH": "fx"}.get(sec_type.upper(), "equity")


def _at(tz: Eastern, day: date, hh: int, mm: int) -> int:
    return tz.epoch(datetime(day.year, day.month, day.day, hh, mm))


def session_for(kind: str, use_rth: bool, trade_date: date, tz: Eastern = EASTERN) -> Session | None:
    """The [start, end) of trade_date's session, None on a weekend."""
    if trade_date.weekday() >= 5:
        return None
    if kind == "option" or (kind in ("equity", "globex") and use_rth):
        return _at(tz, trade_date, 9, 30), _at(tz, trade_date, 16, 0)
    if kind == "equity":
        return _at(tz, trade_date, 4, 0), _at(tz, trade_date, 20, 0)
    before = trade_date - timedelta(days=1)
    if kind == "globex":
        return _at(tz, before, 18, 0), _at(tz, trade_date, 17, 0)
    return _at(tz, before, 17, 15), _at(tz, trade_date, 17, 0)  # fx


def sessions_before(kind: str, use_rth: bool, end: int, tz: Eastern = EASTERN,
                    max_days: int = 800) -> Iterator[tuple[date, Session]]:
    """Trade dates and their sessions (clipped at end) that began before end,
    newest first, looking back at most max_days calendar days."""
    day = tz.local(end).date() + timedelta(days=1)  # a Globex / FX evening belongs to the next trade date
    for _ in range(max_days):
        session = session_for(kind, use_rth, day, tz)
        if session is not None and session[0] < end:
            yield day, (session[0], min(session[1], end))
        day -= timedelta(days=1)


def in_session(kind: str, use_rth: bool, epoch: int, tz: Eastern = EASTERN) -> bool:
    """Whether epoch falls inside a session (used by the tests and keepUpToDate)."""
    day = tz.local(epoch).date()
    for candidate in (day, day + timedelta(days=1)):
        session = session_for(kind, use_rth, candidate, tz)
        if session is not None and session[0] <= epoch < session[1]:
            return True
    return False


def intraday_starts(session: Session, step: int, tz: Eastern = EASTERN) -> list[int]:
    """Bar start times in a session: its first bar at the session's start,
    then on the bar size's clock boundaries (wall time, from midnight)."""
    start, end = session
    starts = []
    t = start
    while t < end:
        starts.append(t)
        wall = tz.local(t)
        since_midnight = wall.hour * 3600 + wall.minute * 60 + wall.second
        t += step - since_midnight % step
    return starts


__all__ = ["EASTERN", "Eastern", "Session", "calendar_kind", "in_session", "intraday_starts", "rule_offset",
           "session_for", "sessions_before"]
