"""From an observed signature to the causes that remain possible.

Why shared by probe and doctor: the same bytes on the wire must get the
same verdict from both commands (they disagreed: "2FA" from one, "zombie"
from the other). Each function here reads recorded facts only (a handshake
failure's cause text, the Gateway messages, the host's socket table) and
returns rows of the one table of causes (causes.py), most likely first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..clients.base import GatewayMessage
from ..protocol.peer import NON_TWS_PREFIX
from .causes import CAUSES, Cause

# 1100: connectivity between IB and the Gateway lost; 1101 / 1102: restored
# (data lost / maintained). IbcAlpha/IBC#251 shows the nightly sequence.
CONNECTIVITY_LOST = 1100
CONNECTIVITY_RESTORED = (1101, 1102)
REAL_GATEWAY_CLIENT_CAP = 32  # "up to 32 client applications" (IBKR TWS API documentation)

# clients/raw.py version_out_of_range() wording; ib_async's adapter uses it too.
VERSION_RANGE_RE = re.compile(r"server version \((?P<server>\d+)\) is (?:below|above) (?P<who>.+?)'s "
                              r"(?:minimum|maximum) \((?P<bound>\d+)\)")


@dataclass
class Judgement:
    """The causes left possible (most likely first) and the facts behind them."""

    causes: list[Cause]
    detail: str = ""  # one line of evidence with the numbers, e.g. "150 < 157"
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.causes]


def is_non_tws(cause_text: str | None) -> bool:
    return bool(cause_text) and cause_text.startswith(NON_TWS_PREFIX)  # type: ignore[union-attr]


def version_range(cause_text: str | None) -> tuple[int, str, int] | None:
    """(server version, client, its bound) when a handshake failed on the version range."""
    match = VERSION_RANGE_RE.search(cause_text or "")
    if match is None:
        return None
    return int(match["server"]), match["who"], int(match["bound"])


def connectivity_lost(messages: Iterable[GatewayMessage]) -> GatewayMessage | None:
    """The last 1100 with no 1101/1102 after it: the API is up but IB is not
    reachable from the Gateway, so nothing reaches the exchange yet."""
    lost: GatewayMessage | None = None
    for message in messages:
        if message.code == CONNECTIVITY_LOST:
            lost = message
        elif message.code in CONNECTIVITY_RESTORED:
            lost = None
    return lost


def connectivity_detail(message: GatewayMessage) -> str:
    when = f" at +{message.at:.3f} s after connect" if message.at is not None else ""
    return f"error 1100{when} ({message.message.strip()}), no 1101/1102 since"


def closed_after_accept(established: int | None, port: int) -> Judgement:
    """TCP accepted, then closed with no version reply: a forwarder with no
    Gateway behind it, an untrusted address, or the client cap. The cap is
    left out when the socket table shows no connection at all, and ranked
    first only when it shows a real Gateway's cap (32) reached."""
    seen = (f"{established} established connection(s) to port {port} seen here" if established is not None
            else f"established connections to port {port} not visible here")
    cap = CAUSES["client_cap"]
    causes = [CAUSES["forwarder"], cap]
    if established == 0:  # nothing connected: no cap can be reached
        causes = [CAUSES["forwarder"]]
    elif established is not None and established >= REAL_GATEWAY_CLIENT_CAP:
        causes = [cap, CAUSES["forwarder"]]
    return Judgement(causes, seen, {"established_on_port": established})


def failure_causes(phase: str | None, cause_text: str | None, codes: Iterable[int] = ()) -> list[Cause] | None:
    """The causes a handshake failure's own evidence settles without the
    socket table, or None when more evidence is needed (silent / closed)."""
    if is_non_tws(cause_text):
        return [CAUSES["non_tws"]]
    if version_range(cause_text) is not None:
        return [CAUSES["version_range"]]
    if phase == "tcp_connect":
        text = (cause_text or "").lower()
        return [CAUSES["unreachable"]] if "within" in text or "timed out" in text else [CAUSES["down"]]
    if phase == "next_valid_id":
        if 326 in set(codes):
            return [CAUSES["id_stuck"]]
        if any(word in (cause_text or "").lower() for word in ("closed", "reset", "in use?")):
            # A bare close after startApi: ib_async#143 saw it for a stuck id on
            # 10.30.1; one connect cannot tell it from a stalled API (doctor
            # retries with a fresh id to separate them).
            return [CAUSES["id_stuck"], CAUSES["api_not_ready"]]
        return [CAUSES["api_not_ready"]]
    if phase == "managed_accounts":
        return [CAUSES["login_incomplete"]]
    if phase == "first_account_value":
        return [CAUSES["sync"]]
    if phase == "api_ready":
        return [CAUSES["client_sync"]]
    if phase == "ping":
        return [CAUSES["ping_unanswered"]]
    return None


__all__ = ["CONNECTIVITY_LOST", "Judgement", "REAL_GATEWAY_CLIENT_CAP", "closed_after_accept", "connectivity_detail",
           "connectivity_lost", "failure_causes", "is_non_tws", "version_range"]
