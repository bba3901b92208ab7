"""The per-connection INFO lines, bounded: every one while connections come
at a human pace, a periodic summary once they come by the hundred.

Why: `ibgw mock serve` logs at INFO by default, and a developer pointing one
client at it wants to see "conn 1 ... started the API" and "conn 1 closed".
At 10,000 sessions (or a benchmark's thousand handshakes a second) those two
lines cost more server CPU than the handshake itself (a formatted, redacted,
written record each) and flood the terminal. So routine lines (a connection
that started the API, a connection the client closed) are logged at INFO up
to LINES_PER_SECOND a second; beyond that they are counted (logged at DEBUG
when that level is on, so --log-level debug still shows every one) and one
summary line every SUMMARY_EVERY seconds says how many were opened, started
and closed, and how many are open. Errors and faults are never counted away:
they keep their own INFO/WARNING line per connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

LINES_PER_SECOND = 20
SUMMARY_EVERY = 10.0


class ConnectionLog:
    """Decides, per routine line, whether it goes out at INFO, and writes the summary."""

    def __init__(self, log: logging.Logger, open_now: Callable[[], int], *, per_second: int = LINES_PER_SECOND,
                 summary_every: float = SUMMARY_EVERY) -> None:
        self.log = log
        self.open_now = open_now  # connections open at the moment (the summary's last figure)
        self.per_second = per_second
        self.summary_every = summary_every
        self._window = 0.0  # start of the current one-second window
        self._in_window = 0
        self.started = self.closed = 0  # routine lines not shown since the last summary
        self._timer: asyncio.TimerHandle | None = None

    def level(self, started: bool) -> int:
        """The level a routine line (started: a connection started the API;
        else: it closed) goes out at: INFO while under the rate, DEBUG
        beyond it (counted for the summary); 0 when nothing would be
        emitted, so the caller skips formatting altogether."""
        if not self.log.isEnabledFor(logging.INFO):
            return logging.DEBUG if self.log.isEnabledFor(logging.DEBUG) else 0
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._window, self._in_window = now, 0
        if self._in_window < self.per_second:
            self._in_window += 1
            return logging.INFO
        if started:
            self.started += 1
        else:
            self.closed += 1
        self._arm()
        return logging.DEBUG if self.log.isEnabledFor(logging.DEBUG) else 0

    def _arm(self) -> None:
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._timer = loop.call_later(self.summary_every, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write the summary of the lines not shown, if any (also at stop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not (self.started or self.closed):
            return
        self.log.info("connections: %d started the API and %d closed without a line each since the last "
                      "summary (over %d lines a second; --log-level debug shows every one); %d open now",
                      self.started, self.closed, self.per_second, self.open_now())
        self.started = self.closed = 0
