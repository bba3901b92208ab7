"""How a live run treats a real Gateway: sequential, paced, bounded.

Why: a real Gateway is shared with a trading process and has been seen to
go unusable until a 2FA restart after connect/disconnect churn (field
report 004). So a live run takes client ids only from a configured range
(never a production client's id), never holds more connections than
allowed, pauses between cycles, and runs few zombie cycles, stopping at the
first failure.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from ..clients.base import PHASE_TCP, ClientAdapter, ConnectResult, HandshakeError
from ..core.constants import LIVE_CLIENT_ID_RANGE as DEFAULT_ID_RANGE

DEFAULT_PAUSE_S = 2.0
DEFAULT_ZOMBIE_RUNS = 5
DEFAULT_MAX_CONNECTIONS = 3


def parse_id_range(text: str) -> tuple[int, int]:
    """'900-999' -> (900, 999); ValueError with the expected form otherwise."""
    lo, sep, hi = text.strip().partition("-")
    if not sep or not lo.strip().isdigit() or not hi.strip().isdigit() or int(lo) > int(hi):
        raise ValueError(f"client id range {text!r} is not LOW-HIGH with LOW <= HIGH, e.g. 900-999")
    if int(hi) > 2**31 - 1:
        raise ValueError(f"client id range {text!r} goes above {2**31 - 1}")
    return int(lo), int(hi)


@dataclass
class LivePolicy:
    live: bool = False
    id_range: tuple[int, int] = DEFAULT_ID_RANGE
    pause_s: float = DEFAULT_PAUSE_S
    zombie_runs: int = DEFAULT_ZOMBIE_RUNS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    proxy: bool = True
    allow_live_account: bool = False

    def zombie_plan(self, runs: int) -> dict[str, Any]:
        """run_zombie's pacing arguments: unchanged against the mock; against
        a real Gateway at most zombie_runs cycles, paused, stopping at the
        first failure."""
        if not self.live:
            return {"runs": runs, "pause": 0.0, "stop_at_first_failure": False}
        return {"runs": min(runs, self.zombie_runs), "pause": self.pause_s, "stop_at_first_failure": True}

    def zombie_notice(self) -> str:
        return (f"live run: zombie cycles against a real Gateway: at most {self.zombie_runs} per test, "
                f"{self.pause_s:g} s apart, stopping at the first failure (a failing cycle can leave a real "
                "Gateway's API unusable until a restart with 2FA; field report 004)")


@dataclass
class ClientIdAllocator:
    """Client ids for scenarios. Against the mock a scenario keeps the id it
    asks for; in a live run every id comes from the configured range, in
    order, so a production client's id is never taken."""

    id_range: tuple[int, int] | None = None
    _next: int = field(default=-1, repr=False)

    def take(self, preferred: int, count: int = 1) -> int:
        """The first of `count` consecutive ids to use instead of `preferred`."""
        if self.id_range is None:
            return preferred
        lo, hi = self.id_range
        if count > hi - lo + 1:
            raise ValueError(f"{count} client ids needed but the range {lo}-{hi} holds {hi - lo + 1}")
        start = lo if self._next < lo or self._next + count - 1 > hi else self._next
        self._next = start + count
        return start


class ConnectionBudget:
    """At most `limit` adapters connected at once; a connect beyond it waits
    for a slot (bounded by its own timeout) and then fails at tcp_connect
    without touching the Gateway. Every connect also starts at least `pause`
    seconds after the previous connection closed: the spacing between
    connect/disconnect cycles a real Gateway is given."""

    def __init__(self, limit: int | None, pause: float = 0.0) -> None:
        self.limit = limit  # None: no budget (the mock), adapters are used as they are
        self.pause = pause
        self._slots = asyncio.Semaphore(limit or 1)
        self.peak = 0
        self._held = 0
        self._last_close: float | None = None

    async def pace(self) -> None:
        if self.pause and self._last_close is not None:
            wait = self._last_close + self.pause - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # deliberate spacing between cycles, not a wait for an event

    def wrap(self, client: ClientAdapter) -> ClientAdapter:
        if self.limit is None:
            return client
        return _BudgetedClient(client, self)


class _BudgetedClient:
    """Delegates everything to the adapter; holds a budget slot from connect to disconnect."""

    def __init__(self, inner: ClientAdapter, budget: ConnectionBudget) -> None:
        self._inner = inner
        self._budget = budget
        self._holding = False
        self.info = inner.info

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name == "abort":  # only adapters that can reset their socket have it (zombie's abort mode checks)
            async def abort() -> None:
                try:
                    await attr()
                finally:
                    self._release()
            return abort
        return attr

    async def connect(self, host: str, port: int, client_id: int, *, timeout: float = 10.0,
                      readonly: bool = True) -> ConnectResult:
        if not self._holding:
            await self._budget.pace()
            try:
                await asyncio.wait_for(self._budget._slots.acquire(), timeout)
            except TimeoutError:
                cause = (f"connection budget: {self._budget.limit} connection(s) already open "
                         "(--ibgw-max-connections); not connecting")
                raise HandshakeError(PHASE_TCP, cause, ConnectResult(self.info, host, port, client_id, readonly,
                                                                     failed_phase=PHASE_TCP, error=cause)) from None
            self._holding = True
            self._budget._held += 1
            self._budget.peak = max(self._budget.peak, self._budget._held)
        try:
            return await self._inner.connect(host, port, client_id, timeout=timeout, readonly=readonly)
        except BaseException:
            self._release()
            raise

    async def disconnect(self) -> None:
        try:
            await self._inner.disconnect()
        finally:
            self._release()

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self._budget._held -= 1
            self._budget._last_close = time.monotonic()
            self._budget._slots.release()


__all__ = ["DEFAULT_ID_RANGE", "ClientIdAllocator", "ConnectionBudget", "LivePolicy", "parse_id_range"]
