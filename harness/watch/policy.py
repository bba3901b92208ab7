"""When the watchdog may restart the Gateway: confirmed, bounded, and never
inside a trading window unless told.

Why each bound: a restart drops every API client (orders in flight lose
their session), so it must be the last resort for a signature a restart is
known to fix, confirmed over consecutive probes; a Gateway that comes back
wedged must not be restarted in a tight loop (back-off doubling, a cap per
hour); and a restart during market hours is a human's call
(--restart-in-window says it was made).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..core.errors import HarnessError
from ..mock.healthcheck import WEDGED
from .classify import Verdict

WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
WEEKDAYS = range(0, 5)  # Monday..Friday: markets' sessions


class PolicyError(HarnessError, ValueError):
    """A bad window or time zone; one line naming the option."""


@dataclass(frozen=True)
class TradingWindow:
    start: dtime
    end: dtime
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, zone: str = "UTC") -> TradingWindow:
        match = WINDOW.match(text.strip())
        if not match:
            raise PolicyError(f"--trading-window {text!r} is not HH:MM-HH:MM (e.g. 09:30-16:00)")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60):
            raise PolicyError(f"--trading-window {text!r}: hours 0-23, minutes 0-59")
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise PolicyError(f"--trading-tz {zone!r} is not a known time zone (e.g. America/New_York)") from None
        return cls(dtime(h1, m1), dtime(h2, m2), tz)

    def contains(self, when: datetime) -> bool:
        """Weekdays only; a window that crosses midnight (22:00-02:00) works."""
        local = when.astimezone(self.zone)
        if local.weekday() not in WEEKDAYS:
            return False
        now = local.time()
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.zone.key} (Mon-Fri)"


@dataclass(frozen=True)
class Decision:
    restart: bool
    reason: str  # one line, printed and recorded as evidence


@dataclass
class RestartPolicy:
    confirm: int = 2  # consecutive confirmed-wedged probes before a restart
    max_per_hour: int = 3
    backoff_s: float = 60.0  # after a restart: no other for this long, doubled per restart that did not heal
    backoff_max_s: float = 1800.0
    restart_grace_s: float = 300.0  # after RESTART: wait this long for the API (IBC restarts within ~2 min)
    window: TradingWindow | None = None
    restart_in_window: bool = False
    can_restart: bool = True  # False without --ibc-command: the watch says what it would do
    history: deque[float] = field(default_factory=deque)  # monotonic times of restarts sent
    current_backoff: float = 0.0

    def decide(self, verdict: Verdict, consecutive: int, now: float, wall: datetime) -> Decision:
        if verdict.state != WEDGED:
            if verdict.cause is None:
                return Decision(False, "healthy")
            fixes = "" if verdict.restart_fixes else ": a restart does not fix this"
            return Decision(False, f"no action: {verdict.state}, {verdict.title}{fixes}")
        if not verdict.confirmed:
            return Decision(False, f"no action: wedge not confirmed ({verdict.why})")
        if not verdict.restart_fixes:
            return Decision(False, f"no action: {verdict.title}: a restart does not fix this")
        if consecutive < self.confirm:
            return Decision(False, f"no action yet: {consecutive} of {self.confirm} consecutive wedged probes")
        last = self.history[-1] if self.history else None
        if last is not None and now - last < self.restart_grace_s:
            return Decision(False, f"waiting: RESTART sent {now - last:.0f} s ago, the Gateway has "
                            f"{self.restart_grace_s:.0f} s to come back")
        if last is not None and now - last < self.current_backoff:
            return Decision(False, f"no action: back-off, the next restart is allowed in "
                            f"{self.current_backoff - (now - last):.0f} s")
        while self.history and now - self.history[0] >= 3600:
            self.history.popleft()
        if len(self.history) >= self.max_per_hour:
            return Decision(False, f"no action: {len(self.history)} restarts in the last hour "
                            f"(--max-restarts-per-hour {self.max_per_hour}); a human should look")
        if self.window is not None and self.window.contains(wall) and not self.restart_in_window:
            return Decision(False, f"no action: inside the trading window {self.window} "
                            "(--restart-in-window allows it)")
        if not self.can_restart:
            return Decision(False, "would restart, but no --ibc-command: restart the Gateway yourself")
        return Decision(True, f"restart: {verdict.title} ({verdict.why})")

    def record_restart(self, now: float) -> None:
        self.history.append(now)
        self.current_backoff = min(self.backoff_max_s, self.current_backoff * 2 if self.current_backoff
                                   else self.backoff_s)

    def record_healthy(self) -> None:
        """A restart that healed resets the back-off."""
        self.current_backoff = 0.0


__all__ = ["Decision", "PolicyError", "RestartPolicy", "TradingWindow"]
