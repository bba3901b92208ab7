"""The version-reply rung when the first handshake got no usable reply: not TWS, out of range,
closed right after accept, or silent (then a fresh client id is tried).

Why one function per outcome: each names different causes from different evidence."""

from __future__ import annotations

import asyncio

from ..causes import CAUSES
from ..judge import closed_after_accept, version_range
from ..listener import port_queues
from .attempt import Attempt
from .diagnosis import silent_family_titles
from .evidence import outcome_text, version_ev
from .rungs import ready_rungs
from .sockets import socket_row
from .state import Ladder
from .vocabulary import (
    CAUSE_DOWN,
    CAUSE_NON_TWS,
    CAUSE_TRANSIENT,
    CAUSE_VERSION_RANGE,
    CAUSE_WEDGE,
    CAUSE_ZOMBIE,
    FAIL,
    FIX_DOWN,
    FIX_SILENT,
    FIX_ZOMBIE,
    RUNG_ACCOUNT_KIND,
    RUNG_ACCOUNTS,
    RUNG_CLIENT_ID,
    RUNG_CONNECTIVITY,
    RUNG_NEXT_ID,
    RUNG_SYNC,
    RUNG_VERSION,
    SKIP,
    WARN,
    Rung,
    skip_after,
)


async def version_not_tws(first: Attempt, ladder: Ladder) -> Attempt | None:
    """Version reply: the port answers, but not as a TWS API."""
    rungs = ladder.rungs
    rungs[RUNG_VERSION] = Rung(RUNG_VERSION, FAIL, {"outcome": "not a TWS reply", "cause": first.cause,
                                                    "phases_ms": first.phases_ms}, CAUSES["non_tws"].fix,
                               f"{first.cause}: wrong port")
    ladder.diagnosis.append(f"{CAUSE_NON_TWS}: {first.cause}")
    skip_after(rungs, "the port does not speak the TWS API", RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_CONNECTIVITY,
                RUNG_SYNC, RUNG_CLIENT_ID, RUNG_ACCOUNT_KIND)
    return None


async def version_out_of_range(first: Attempt, ladder: Ladder) -> Attempt | None:
    """Version reply: outside the client's range, which refused it."""
    rungs = ladder.rungs
    server, who, bound = version_range(first.cause) or (0, "", 0)
    ev = {**version_ev(first), "outcome": "version reply outside the client's range", "cause": first.cause,
          "client_bound": bound}
    rungs[RUNG_VERSION] = Rung(RUNG_VERSION, FAIL, ev, CAUSES["version_range"].fix, first.cause)
    ladder.diagnosis.append(f"{CAUSE_VERSION_RANGE}: {first.cause}")
    skip_after(rungs, "the client refused the Gateway's server version", RUNG_NEXT_ID, RUNG_ACCOUNTS,
                RUNG_CONNECTIVITY, RUNG_SYNC, RUNG_CLIENT_ID, RUNG_ACCOUNT_KIND)
    return None


async def version_closed(first: Attempt, ladder: Ladder) -> Attempt | None:
    """Version reply: the connection closed right after accept."""
    rungs, survey = ladder.rungs, ladder.survey
    judged = closed_after_accept(survey.established if survey.visible else None, ladder.port)
    ev = {"outcome": "closed before the version reply", "cause": first.cause,
          "phases_ms": first.phases_ms, "listener": [socket_row(r) for r in survey.listeners],
          "established_on_port": survey.established if survey.visible else None}
    fix = "; or ".join(row.fix for row in judged.causes)
    rungs[RUNG_VERSION] = Rung(RUNG_VERSION, FAIL, ev, fix,
                               "the connection was closed right after accept, with no version reply "
                               f"({judged.detail})")
    for row in judged.causes:
        ladder.diagnosis.append(f"{row.title}: {judged.detail}" if row.key == "client_cap" else row.title)
    skip_after(rungs, "no version reply", RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_CONNECTIVITY, RUNG_SYNC,
                RUNG_CLIENT_ID, RUNG_ACCOUNT_KIND)
    return None


async def version_silent(first: Attempt, ladder: Ladder) -> Attempt | None:
    """Version reply: TCP accepted, nothing said; a fresh client id tells
    a transient stall from a silent (wedged, zombie, dialog) Gateway."""
    rungs, diagnosis, survey, timeout = ladder.rungs, ladder.diagnosis, ladder.survey, ladder.timeout
    second = await ladder.fresh_attempt(first)
    fresh_ev = {"fresh_client_id": second.client_id, "fresh_attempt": second.brief(),
                "fresh_id_helps": second.kind == "ok"}
    if second.kind == "ok":
        rungs[RUNG_VERSION] = Rung(
            RUNG_VERSION, WARN, {**version_ev(second), "first_attempt": first.brief(), **fresh_ev},
            "if this repeats, the Gateway is overloaded or restarting: check its log",
            f"the first handshake got no version reply within {timeout:g} s; a second one did "
            f"(server version {second.result.server_version if second.result else '?'})")
        diagnosis.append(CAUSE_TRANSIENT)
        return await ready_rungs(second, rungs, diagnosis, first_id_refused=False)
    ev = {"outcome": f"TCP accepted, no version reply within {timeout:g} s", "first_attempt": first.brief(),
          **fresh_ev, "close_wait": survey.count if survey.visible else None}
    remaining = silent_family_titles(survey, ladder.threshold)
    if survey.visible:  # the listener's queues, read after our own unanswered attempts (listener.py)
        queues = await asyncio.to_thread(port_queues, ladder.port)
        ev["listener_queues"] = queues.to_dict()
        if queues.wedged:
            ev["wedge"] = queues.signature
            remaining = [CAUSE_WEDGE, *(c for c in remaining if c != CAUSE_WEDGE)]
    if second.kind == "refused":
        remaining = [CAUSE_DOWN]  # it went away between the attempts: mid-restart
        ev["note"] = "the port refused the second attempt: the Gateway went down while doctor ran"
    remediation = FIX_ZOMBIE if remaining[0] == CAUSE_ZOMBIE else (
        FIX_DOWN if remaining == [CAUSE_DOWN] else FIX_SILENT)
    rungs[RUNG_VERSION] = Rung(RUNG_VERSION, FAIL, ev, remediation,
                               f"TCP accepted, but no version reply within {timeout:g} s "
                               f"(fresh client id {second.client_id}: {outcome_text(second, timeout)})"
                               + (f"; {ev['wedge']}" if ev.get("wedge") else ""))
    diagnosis.extend(remaining)
    skip_after(rungs, "no version reply", RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_CONNECTIVITY, RUNG_SYNC,
                RUNG_ACCOUNT_KIND)
    rungs[RUNG_CLIENT_ID] = Rung(
        RUNG_CLIENT_ID, SKIP, {"client_id": first.client_id, **fresh_ev}, "",
        f"not reached: the Gateway never asked for a client id; a fresh id ({second.client_id}) did not "
        "help either, so the client id is not the cause")
    return None
