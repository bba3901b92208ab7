"""Rungs 1-4 and 6 from one or two handshake attempts: the port rung, then the first attempt's
outcome dispatched to the function that writes its rungs (version.py, client_id.py).

Why a table: adding an outcome is one function and one entry, not a branch in a long function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ...clients.base import PHASE_TCP
from .attempt import Attempt
from .client_id import client_id_refused, no_managed_accounts, no_next_valid_id
from .rungs import ready_rungs, version_rung
from .sockets import socket_row
from .state import Ladder
from .version import version_closed, version_not_tws, version_out_of_range, version_silent
from .vocabulary import (
    CAUSE_DOWN,
    CAUSE_UNREACHABLE,
    FAIL,
    FIX_DOWN,
    FIX_UNREACHABLE,
    OK,
    RUNG_ACCOUNT_KIND,
    RUNG_ACCOUNTS,
    RUNG_CLIENT_ID,
    RUNG_CONNECTIVITY,
    RUNG_NEXT_ID,
    RUNG_PORT,
    RUNG_SYNC,
    RUNG_VERSION,
    Rung,
    skip_after,
)


async def handshake_rungs(first: Attempt, ladder: Ladder) -> Attempt | None:
    """Rungs 1-4 and 6 from one or two handshake attempts: one function per
    outcome of the first attempt. Returns the attempt whose client is
    connected and ready, or None."""
    if first.kind in _PORT_FAILURES:
        _port_rung_failed(first, ladder)
        return None
    tcp_ms = first.phases_ms.get(PHASE_TCP)
    ladder.rungs[RUNG_PORT] = Rung(RUNG_PORT, OK, {"target": ladder.target, "tcp_connect_ms": tcp_ms},
                                   summary=f"{ladder.target} accepted TCP in {tcp_ms} ms")
    before_version = _BEFORE_VERSION.get(first.kind)
    if before_version is not None:
        return await before_version(first, ladder)
    ladder.rungs[RUNG_VERSION] = version_rung(first, ladder.diagnosis)
    after_version = _AFTER_VERSION.get(first.kind)
    if after_version is not None:
        return await after_version(first, ladder)
    return await ready_rungs(first, ladder.rungs, ladder.diagnosis, first_id_refused=False)


_PORT_FAILURES = ("refused", "tcp_timeout", "tcp_error")


def _port_rung_failed(first: Attempt, ladder: Ladder) -> None:
    """Port reachable: refused, no answer, or a TCP error."""
    rungs, diagnosis, target = ladder.rungs, ladder.diagnosis, ladder.target
    survey = ladder.survey
    ev = {"target": target, "outcome": first.kind, "cause": first.cause,
          "listener_visible": [socket_row(r) for r in survey.listeners] if survey.visible else None}
    if first.kind == "refused":
        rungs[RUNG_PORT] = Rung(RUNG_PORT, FAIL, ev, FIX_DOWN, f"{target} refused the connection")
        diagnosis.append(CAUSE_DOWN)
    elif first.kind == "tcp_timeout":
        rungs[RUNG_PORT] = Rung(RUNG_PORT, FAIL, ev, FIX_UNREACHABLE,
                                f"no answer to the TCP connect within {ladder.timeout:g} s")
        diagnosis.append(CAUSE_UNREACHABLE)
    else:
        rungs[RUNG_PORT] = Rung(RUNG_PORT, FAIL, ev, FIX_UNREACHABLE + "; " + FIX_DOWN,
                                f"TCP connect failed: {first.cause}")
        diagnosis.extend([CAUSE_UNREACHABLE, CAUSE_DOWN])
    skip_after(rungs, "no TCP connection", RUNG_VERSION, RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_CONNECTIVITY,
                RUNG_SYNC, RUNG_CLIENT_ID, RUNG_ACCOUNT_KIND)


_RungStep = Callable[[Attempt, Ladder], Awaitable["Attempt | None"]]
# The first attempt's outcome -> the function that writes its rungs, before
# and after the version rung.
_BEFORE_VERSION: dict[str, _RungStep] = {"non_tws": version_not_tws, "version_range": version_out_of_range,
                                         "closed": version_closed, "silent": version_silent}
_AFTER_VERSION: dict[str, _RungStep] = {"id_in_use": client_id_refused, "closed_after_start": client_id_refused,
                                        "no_next_id": no_next_valid_id, "no_accounts": no_managed_accounts}
