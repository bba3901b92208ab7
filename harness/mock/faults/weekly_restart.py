"""The weekly restart: once a week IB requires a fresh login, so the
Gateway's restart cannot restore its session on its own. Behind
gnzsnz/ib-gateway-docker's socat forwarder the port answers while the Java
API listener is down: 'socat ... E connect(... 127.0.0.1:4002):
Connection refused', then 'autorestart file not found', every Monday until
someone logs in (gnzsnz/ib-gateway-docker#119; the maintainer: credentials
are needed once a week). heshiming/ibga#34 reports the same weekly token
expiry during an auto-restart, never healing by itself.

One module: the fault asks the gateway to restart when its time comes and
answers every connection afterwards with accept-then-close, until the
fault is cleared, which stands for the fresh login."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .base import Fault, FaultSpec, pair
from .registry import register

if TYPE_CHECKING:
    from ..gateway import MockGateway

log = logging.getLogger("harness.mock")


@register
class WeeklyRestart(Fault):
    spec = FaultSpec(
        "weekly-restart", "T[,DOWN]", "the weekly restart, T s after set: every connection dropped, the port "
        "refused for DOWN s (default 5), then the port accepts and closes each connection at once (a socket "
        "forwarder up, the API listener down) until a fresh login: clearing the fault",
        lambda v: pair("weekly-restart", "weekly-restart=T[,DOWN]", v, 5.0),
        source="gnzsnz/ib-gateway-docker#119 ('autorestart file not found', socat 'Connection refused' every "
               "Monday until a login); heshiming/ibga#34 (weekly token expiry during an auto-restart)")

    def __init__(self, value: Any, raw: str) -> None:
        super().__init__(value, raw)
        self.needs_login = False  # set by the restart; the fault's clearing is the login

    async def _run(self, gw: MockGateway) -> None:
        at, down = self.value
        await asyncio.sleep(at)  # scheduled fault offset
        self.needs_login = True
        log.warning("fault weekly-restart: the Gateway restarts and needs a fresh login")
        await gw.restart(down)

    def arm(self, gw: MockGateway) -> Coroutine[Any, Any, None] | None:
        return self._run(gw)

    def refuses_accept(self, gw: MockGateway) -> str | None:
        if not self.needs_login:
            return None
        return "fault weekly-restart: closed right after accept, the Gateway waits for a fresh login"
