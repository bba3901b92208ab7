"""Timed faults: IB's connectivity losses, the nightly reset and the daily
restart. Each arms a timer when set; the gateway performs the event."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .base import Fault, FaultError, FaultSpec, number, pair
from .registry import register

if TYPE_CHECKING:
    from ..gateway import MockGateway


@register
class ConnectivityLoss(Fault):
    spec = FaultSpec(
        "connectivity-loss", "AT,FOR", "AT s after set: error 1100 and farms broken (2103/2105); FOR s "
        "later 1102 and farms OK", lambda v: pair("connectivity-loss", "connectivity-loss=AT,FOR", v, None),
        source="IbcAlpha/IBC#143, IbcAlpha/IBC#251 (nightly reset: 1100, 2103/2105, 1102)")

    def arm(self, gw: MockGateway) -> Coroutine[Any, Any, None] | None:
        return gw.connectivity_loss(*self.value)


def _nightly_reset(value: str | None) -> tuple[float, float, int, bool]:
    parts = [p.strip() for p in (value or "").split(",")]
    if len(parts) < 2 or len(parts) > 4 or not parts[0] or not parts[1]:
        raise FaultError(f"fault nightly-reset needs AT,FOR[,REPEATS[,lost]] (got {value!r})")
    at, duration = number("nightly-reset", parts[0]), number("nightly-reset", parts[1])
    repeats = int(number("nightly-reset", parts[2], minimum=1, integer=True)) if len(parts) > 2 and parts[2] else 3
    if len(parts) == 4 and parts[3] not in ("lost", "maintained"):
        raise FaultError(f"fault nightly-reset: {parts[3]!r} is not 'lost' or 'maintained'")
    return at, duration, repeats, len(parts) == 4 and parts[3] == "lost"


@register
class NightlyReset(Fault):
    spec = FaultSpec(
        "nightly-reset", "AT,FOR[,REPEATS[,lost]]", "IB's nightly reset, AT s after set and FOR s long: "
        "error 1100 REPEATS times (default 3), then 2103/2105 farms broken, then 1102 carrying the farm list "
        "(1101 'data lost' with lost), then 2107/2108 farms inactive; the socket stays up", _nightly_reset,
        source="IbcAlpha/IBC#143, IbcAlpha/IBC#251 (the reset's messages); QuantConnect/Lean PR #960 (1101)")

    async def _run(self, gw: MockGateway) -> None:
        at, duration, repeats, lost = self.value
        await asyncio.sleep(at)  # scheduled fault offset
        await gw.nightly_reset(duration, repeats=repeats, data_lost=lost)

    def arm(self, gw: MockGateway) -> Coroutine[Any, Any, None] | None:
        return self._run(gw)


@register
class RestartAt(Fault):
    spec = FaultSpec(
        "restart-at", "T[,DOWN]", "the daily restart, T s after set: every connection dropped, the port "
        "refused for DOWN s (default 5; a real auto-restart takes about 60-90 s), then back",
        lambda v: pair("restart-at", "restart-at=T[,DOWN]", v, 5.0),
        source="manhinhang/ib-gateway-docker PR #157 (auto-restart refuses the port ~60-90 s)")

    async def _run(self, gw: MockGateway) -> None:
        at, down = self.value
        await asyncio.sleep(at)  # scheduled fault offset
        await gw.restart(down)  # stays in the gateway's timers until done, so clearing the fault ends it early

    def arm(self, gw: MockGateway) -> Coroutine[Any, Any, None] | None:
        return self._run(gw)
