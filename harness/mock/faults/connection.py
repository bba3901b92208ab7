"""Faults of the connection itself: what happens at accept, at the
handshake, at startApi and when a client leaves."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..sources import FIELD_REPORTS_ONLY
from .base import Fault, FaultSpec, flag, number, server_version, until_restart
from .registry import register

if TYPE_CHECKING:
    from ..gateway import MockGateway
    from ..session import Session

log = logging.getLogger("harness.mock")


@register
class SilentHandshake(Fault):
    spec = FaultSpec(
        "silent-handshake", "", "TCP accepted, no version reply: an accept-incoming-connection dialog "
        "waiting (untrusted client address) or a wedged API; not a login or 2FA in progress (the "
        "listener is not up then)", flag("silent-handshake"),
        source="ib-api-reloaded/ib_async#18, IbcAlpha/IBC#195 (incoming-connection dialog); "
               "gnzsnz/ib-gateway-docker#336 (wedged API)")

    def blocks_handshake(self, gw: MockGateway) -> str | None:
        return "fault silent-handshake: API layer not answering"


@register
class CloseAfterAccept(Fault):
    spec = FaultSpec(
        "close-after-accept", "", "accepted, then closed at once (a socket forwarder up while the Gateway "
        "logs in or waits for 2FA; an untrusted client address)", flag("close-after-accept"),
        source="gnzsnz/ib-gateway-docker#119 (socat: 'Connection refused' behind it); "
               "ib-controller/ib-controller#197 (untrusted address)")

    def refuses_accept(self, gw: MockGateway) -> str | None:
        return "fault close-after-accept: closed right after accept"


@register
class ClientIdStuck(Fault):
    spec = FaultSpec(
        "client-id-stuck", "S", "after a client leaves, its id stays in use (326 and close) for S "
        "seconds, or until restart without a value", until_restart("client-id-stuck"),
        source="ib-api-reloaded/ib_async#152, erdewit/ib_insync#106")

    def on_client_id_released(self, gw: MockGateway, client_id: int) -> None:
        gw.stuck_ids[client_id] = time.monotonic() + self.value


@register
class ClosedAfterStartApi(Fault):
    spec = FaultSpec(
        "closed-after-start-api", "S", "for S seconds after an API client leaves (until restart without a "
        "value) the Gateway closes each new connection right after its startApi, with no error message "
        "(no 326); ib_async reports it as 'clientId N already in use?' whatever the id",
        until_restart("closed-after-start-api"),
        source="ib-api-reloaded/ib_async#143 (10.30.1: 'Peer closed connection. clientId 123 already in "
               "use?' with a unique id)")

    def closes_after_start_api(self, gw: MockGateway) -> str | None:
        """A client left less than S seconds ago (or at all, without a
        value), so this startApi gets a bare close (ib_async#143 on 10.30.1)."""
        if gw.last_api_leave is None or time.monotonic() - gw.last_api_leave >= self.value:
            return None
        return "fault closed-after-start-api: closed right after startApi, no error message"


@register
class RedAfterDisconnect(Fault):
    spec = FaultSpec(
        "red-after-disconnect", "", "after a client's explicit disconnect the API layer stops answering "
        "new handshakes until restart", flag("red-after-disconnect"), source=FIELD_REPORTS_ONLY)

    def blocks_handshake(self, gw: MockGateway) -> str | None:
        return RED_CAUSE if gw.red else None

    def on_client_close(self, session: Session) -> str | None:
        explicit = session.client_eof and session.record.started_api and session.drop_cause is None
        if explicit and not session.gw.red:
            session.gw.red = True
            log.warning("conn %d: client disconnected; fault red-after-disconnect: API layer now red",
                        session.record.conn_id)
        return None


# The gateway keeps answering with this while it is red, even once the fault
# is cleared: only a restart turns the API green again.
RED_CAUSE = "fault red-after-disconnect: API layer red since a client disconnected"


def _close_wait_leak(value: str | None) -> int:
    return 5 if value in (None, "") else int(number("close-wait-leak", value, minimum=1, integer=True))


@register
class CloseWaitLeak(Fault):
    spec = FaultSpec(
        "close-wait-leak", "N", "client churn leaks: the Gateway never closes its side after a client's "
        "clean disconnect while it still answers; after N such sockets handshakes go unanswered "
        "(default 5). Public reports show CLOSE_WAIT as a symptom of a wedged API instead (api-wedge)",
        _close_wait_leak, source=FIELD_REPORTS_ONLY)

    def blocks_handshake(self, gw: MockGateway) -> str | None:
        if len(gw.leaked) >= self.value:
            return f"fault close-wait-leak: {len(gw.leaked)} CLOSE_WAIT sockets, API saturated"
        return None

    def on_client_close(self, session: Session) -> str | None:
        if not session.client_eof or session.drop_cause is not None:
            return None
        # Never close our side: the socket stays in CLOSE_WAIT, as a
        # Gateway's zombie connections do, until restart or stop.
        session.gw.leaked.append(session.writer)
        return "left in CLOSE_WAIT (fault close-wait-leak)"


@register
class MaxServerVersion(Fault):
    spec = FaultSpec(
        "max-server-version", "V", "the build negotiates at most V (a retired build when V is below a "
        "client's minimum)", server_version("max-server-version"),
        source="waytrade/ib-gateway-docker#9, rolandgg/rust_ib_api#4 (retired builds)")

    def max_server_version(self, version: int) -> int:
        return int(self.value)


@register
class MaxClients(Fault):
    spec = FaultSpec(
        "max-clients", "N", "at most N API clients at once; over it: accept, then close (an assumption)",
        lambda v: int(number("max-clients", v, integer=True)),
        source=f"{FIELD_REPORTS_ONLY}: IBKR's API docs say up to 32 clients; what the 33rd sees is not public")

    def max_clients(self, limit: int) -> int:
        return int(self.value)
