"""The wedged API thread (gnzsnz/ib-gateway-docker#336,
nautechsystems/nautilus_trader#4796): the fault decides when the API wedges;
the gateway's `wedge()` does it and its restart clears it."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .base import Fault, FaultError, FaultSpec, number
from .registry import register

if TYPE_CHECKING:
    from ..gateway import MockGateway

WEDGE_MODES = ("no-accept", "no-read")


def _api_wedge(value: str | None) -> tuple[str, int]:
    mode, _, after = (value or "").partition(",")
    mode = mode.strip()
    if mode not in WEDGE_MODES:
        raise FaultError(f"fault api-wedge: {mode or 'no mode'!r} is not one of {', '.join(WEDGE_MODES)} "
                         "(e.g. api-wedge=no-read,2)")
    return mode, int(number("api-wedge", after, integer=True)) if after.strip() else 0


@register
class ApiWedge(Fault):
    spec = FaultSpec(
        "api-wedge", "MODE[,AFTER]", "the Gateway's API thread wedges once AFTER API sessions have ended "
        "(default 0: at once), until restart. no-accept: the port stays open but nothing is accept()ed, "
        "the listener's accept queue (Recv-Q) grows; no-read: connections are accepted, never read nor "
        "answered. Either way every client times out and CLOSE_WAIT sockets pile up, even after clean "
        "disconnects", _api_wedge,
        source="gnzsnz/ib-gateway-docker#336 (10.41.1d), erdewit/ib_insync#386 (Java-owned CLOSE_WAIT); "
               "nautechsystems/nautilus_trader#4796 (10.41.1c: no accept(), Recv-Q grows)")

    def arm(self, gw: MockGateway) -> Coroutine[Any, Any, None] | None:
        self._maybe_wedge(gw)
        return None

    def on_api_session_end(self, gw: MockGateway) -> None:
        self._maybe_wedge(gw)

    def _maybe_wedge(self, gw: MockGateway) -> None:
        mode, after = self.value
        if gw.wedged is None and gw.listening and gw.api_sessions_ended >= after:
            gw.wedge(mode)
