"""Scenario: consecutive connect/disconnect runs leave no zombies behind.

The symptom it settles: CLOSE_WAIT sockets on the Gateway port, a client id
left "in use", an API that stops answering. Public reports show the
CLOSE_WAIT pile-up as the result of the Gateway's API thread wedging
(gnzsnz/ib-gateway-docker#336, nautechsystems/nautilus_trader#4796), not of
churn; churn is named only when CLOSE_WAIT grows with this client's own
clean disconnects while the API still answers. Each run records the
CLOSE_WAIT count after it, whether the handshake succeeded, its time to
API-ready and, after a failed run, the listener's queues (listener.py:
connections never accept()ed, bytes never read); the verdict separates the
causes by that evidence.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from ..clients.base import PHASE_NEXT_VALID_ID, PHASE_SERVER_VERSION, ClientAdapter, HandshakeError
from ..clients.readiness import connect_until_ready
from ..core.record import FAILED, PASSED, Evidence
from ..core.wait import poll_until
from ..targets.base import Endpoint
from ..targets.sockets import close_wait_count, port_states
from .common import new_evidence
from .listener import port_queues

SCENARIO = "zombie"
MODES = ("disconnect", "abort", "process-exit")
SETTLE_POLL_S = 0.02

CAUSE_ZOMBIES = "zombie sockets"
CAUSE_STUCK_ID = "client id stuck"
CAUSE_RED = "API unresponsive after a disconnect"
CAUSE_WEDGE = "API wedged"
CAUSE_CLOSED_AFTER_START = "closed right after startApi"
CAUSE_CLIENT_SLOW_CLOSE = "the client's own slow close"
# How long the previous connection's close is watched for (the official ibapi's lingers up to 1 s: it
# closes from its reader thread, whose recv has a 1 s timeout, connection.py settimeout(1)).
LINGER_WATCH_S = 3.0
WEDGE_SOURCES = "gnzsnz/ib-gateway-docker#336, nautechsystems/nautilus_trader#4796"


async def settled_close_wait(port: int, baseline: int, timeout: float) -> int:
    """CLOSE_WAIT count once a healthy Gateway has had the chance to close
    its side. The kernel offers no event for a socket's state, so this polls
    the table, bounded by `timeout`; a healthy server settles in
    milliseconds, a leaking one never does."""
    counts = [close_wait_count(port)]

    def settled() -> bool:  # polling kernel state: no event exists for it
        if counts[-1] > baseline:
            counts.append(close_wait_count(port))
        return counts[-1] <= baseline

    await poll_until(settled, timeout=timeout, interval=SETTLE_POLL_S, raise_on_timeout=False)
    return counts[-1]


def _established_peers(port: int) -> set[str]:
    """Remote addresses of the Gateway-side ESTABLISHED sockets on `port` (empty when the table is unreadable)."""
    try:
        return {row.remote for row in port_states(port) if row.status == "ESTABLISHED"}
    except Exception:  # noqa: BLE001 - no table: no linger measurement, the run itself goes on
        return set()


async def _close_linger_ms(port: int, peers: set[str], returned: float) -> float | None:
    """How long after the client's disconnect() returned its connection was
    still ESTABLISHED on the Gateway's side (the FIN had not arrived). Runs
    alongside the next run, so a same-id reconnect happens as it would in
    the client's own code. Polls the socket table (no event exists for it),
    bounded by LINGER_WATCH_S; None when it never closed within that."""
    while (looked := time.monotonic()) - returned < LINGER_WATCH_S:
        still = await asyncio.to_thread(_established_peers, port)
        if not peers & still:  # closed by the time this look began (a table read takes its own time)
            return round(max(0.0, looked - returned) * 1000, 1)
        await asyncio.sleep(SETTLE_POLL_S)  # polling kernel state
    return None


async def _run_in_exiting_process(client_name: str, endpoint: Endpoint, client_id: int,
                                  timeout: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness.scenarios.exit_worker", "--client", client_name, "--host", endpoint.host,
        "--port", str(endpoint.port), "--client-id", str(client_id), "--timeout", str(timeout),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout + 30)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    lines = out.decode().strip().splitlines()
    if not lines:
        return {"ok": False, "failed_phase": "harness", "error": f"worker printed nothing: {err.decode()[-300:]}"}
    return json.loads(lines[-1])


async def run_zombie(endpoint: Endpoint, client_name: str, make_client: Callable[[], ClientAdapter], *,
                     runs: int = 10, client_id: int = 60, rotate_ids: bool = False, mode: str = "disconnect",
                     timeout: float = 10.0, pause: float = 0.0, settle_timeout: float = 2.0,
                     stop_at_first_failure: bool = False) -> Evidence:
    """`runs` consecutive connect/disconnect cycles; passes when every run
    reached API-ready and CLOSE_WAIT on the port is back to its baseline."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    probe = make_client()
    if mode == "abort" and not hasattr(probe, "abort"):
        raise ValueError(f"mode abort needs a client that can reset its socket; {client_name} cannot")
    evidence = new_evidence(SCENARIO, endpoint, probe, runs=runs, client_id=client_id, rotate_ids=rotate_ids,
                            mode=mode, timeout_s=timeout, pause_s=pause)
    baseline = close_wait_count(endpoint.port)
    rows: list[dict[str, Any]] = []
    lingers: list[tuple[dict[str, Any], asyncio.Task[float | None]]] = []
    returned_at: dict[int, float] = {}  # run -> when its disconnect() returned
    started_at: dict[int, float] = {}
    for run in range(1, runs + 1):
        cid = client_id + run - 1 if rotate_ids else client_id
        row: dict[str, Any] = {"run": run, "client_id": cid}
        if mode == "process-exit":
            data = await _run_in_exiting_process(client_name, endpoint, cid, timeout)
            row.update(ok=bool(data.get("ok")), failed_phase=data.get("failed_phase"), cause=data.get("error"),
                       api_ready_ms=_ms((data.get("phases") or {}).get("api_ready")))
        else:
            client = probe if run == 1 else make_client()
            before = await asyncio.to_thread(_established_peers, endpoint.port)
            started_at[run] = time.monotonic()
            try:
                result = await connect_until_ready(client, endpoint, cid, timeout=timeout)
                row.update(ok=True, api_ready_ms=_ms(result.phases.get("api_ready")))
            except HandshakeError as exc:
                row.update(ok=False, failed_phase=exc.phase, cause=exc.cause)
            mine = await asyncio.to_thread(_established_peers, endpoint.port) - before
            if mode == "abort":
                await client.abort()  # type: ignore[attr-defined]
            else:
                await client.disconnect()
            returned_at[run] = time.monotonic()
            if mine:  # measured while the next run goes ahead, as the client's own code would
                lingers.append((row, asyncio.create_task(_close_linger_ms(endpoint.port, mine, returned_at[run]))))
        row["close_wait_after"] = await settled_close_wait(endpoint.port, baseline, settle_timeout)
        if not row["ok"]:
            queues = await asyncio.to_thread(port_queues, endpoint.port)
            if queues.wedged:
                row["wedge"] = queues.signature
        rows.append(row)
        if stop_at_first_failure and not row["ok"]:
            break
        if pause:
            await asyncio.sleep(pause)  # deliberate spacing between cycles (respects a real Gateway)
    for row, task in lingers:
        row["close_linger_ms"] = await task
    for row in rows[1:]:
        prev = rows[row["run"] - 2]
        linger = prev.get("close_linger_ms")
        if linger is not None and row["run"] in started_at and prev["run"] in returned_at:
            # the previous connection still ESTABLISHED at the Gateway when this run began
            row["prev_open_at_start"] = linger > (started_at[row["run"]] - returned_at[prev["run"]]) * 1000
    _judge(evidence, rows, baseline)
    return evidence.finish()


def _judge(evidence: Evidence, rows: list[dict[str, Any]], baseline: int) -> None:
    counts = [r["close_wait_after"] for r in rows]
    final = counts[-1] if counts else baseline
    ok_runs = sum(1 for r in rows if r["ok"])
    evidence.details["runs"] = rows
    evidence.measurements.update({
        "runs_count": len(rows), "runs_ok_count": ok_runs, "close_wait_baseline_count": baseline,
        "close_wait_max_count": max(counts, default=baseline), "close_wait_final_count": final,
    })
    ready = [r["api_ready_ms"] for r in rows if r.get("api_ready_ms") is not None]
    if ready:
        evidence.measurements["api_ready_median_ms"] = sorted(ready)[len(ready) // 2]
    evidence.checks = {"every_run_succeeded": ok_runs == len(rows), "close_wait_back_to_baseline": final <= baseline}
    if all(evidence.checks.values()):
        evidence.outcome = PASSED
        return
    evidence.outcome = FAILED
    first_bad = next((r for r in rows if not r["ok"]), None)
    grew = max(counts, default=baseline) > baseline
    # CLOSE_WAIT that grew right after one of this client's own successful,
    # clean runs, while the API still answered: the churn signature.
    churn = any(r["ok"] and r["close_wait_after"] > (rows[i - 1]["close_wait_after"] if i else baseline)
                for i, r in enumerate(rows))
    if first_bad is None:
        evidence.failed_phase = "close_wait"
        evidence.cause = (f"{CAUSE_ZOMBIES}: CLOSE_WAIT on the port stayed at {final} (baseline {baseline}), "
                          "growing with this client's own clean disconnects while the API still answered")
        evidence.hint = "the Gateway is not closing its side of finished connections; it will saturate"
        return
    evidence.failed_phase = first_bad["failed_phase"]
    where = f"run {first_bad['run']} failed at {first_bad['failed_phase']} ({first_bad['cause']})"
    silent = first_bad["failed_phase"] == PHASE_SERVER_VERSION
    if first_bad.get("wedge") or (silent and grew and not churn):
        seen = first_bad.get("wedge") or f"CLOSE_WAIT grew to {max(counts)} (baseline {baseline}) only after " \
                                          "runs the API did not answer"
        evidence.cause = f"{CAUSE_WEDGE}: {where}; {seen}; client churn is not shown to be the cause"
        evidence.hint = f"restart the Gateway (IBC RESTART): its API thread is wedged ({WEDGE_SOURCES})"
        evidence.details["wedge"] = seen
        return
    if grew:
        evidence.cause = (f"{CAUSE_ZOMBIES}: CLOSE_WAIT grew to {max(counts)} (baseline {baseline}) and {where}")
        evidence.hint = "restart the Gateway to clear the zombies; stop the connect/disconnect churn"
    elif (first_bad["failed_phase"] == PHASE_NEXT_VALID_ID and "326" in str(first_bad["cause"])
          and _lingered(rows, first_bad)):
        prev = rows[rows.index(first_bad) - 1]
        evidence.cause = (f"{CAUSE_CLIENT_SLOW_CLOSE}: {where}; run {prev['run']}'s connection reached the Gateway's "
                          f"side closed only {prev['close_linger_ms']:g} ms after its disconnect() returned, and run "
                          f"{first_bad['run']} reused client id {first_bad['client_id']} inside that window: a real "
                          "Gateway answers 326 there too (the official ibapi closes from its reader thread, whose "
                          "recv has a 1 s timeout)")
        evidence.hint = ("the client's behaviour, not the Gateway's: wait for the close (ibapi: connectionClosed, or "
                         "join its reader thread) before reconnecting with the same id, or use another id")
        evidence.details["close_linger_ms"] = prev["close_linger_ms"]
    elif first_bad["failed_phase"] == PHASE_NEXT_VALID_ID and "326" in str(first_bad["cause"]):
        evidence.cause = f"{CAUSE_STUCK_ID}: {where}"
        evidence.hint = "the Gateway still holds the id of a client that left; use another client id or restart"
    elif first_bad["failed_phase"] == PHASE_NEXT_VALID_ID and re.search(r"closed", str(first_bad["cause"]), re.I):
        # What was seen, not ib_async's guess: its "clientId N already in use?" follows any early close.
        evidence.cause = (f"{CAUSE_CLOSED_AFTER_START}: {where}; no error 326 arrived, so the client id was not "
                          "refused")
        evidence.hint = ("the Gateway closed the API connection without a message, as reported on 10.30.1 "
                         "(ib-api-reloaded/ib_async#143); try a fresh client id, then restart the Gateway")
    elif first_bad["failed_phase"] == PHASE_SERVER_VERSION and first_bad["run"] > 1:
        evidence.cause = f"{CAUSE_RED}: {where}; CLOSE_WAIT stayed at baseline, so not zombie saturation"
        evidence.hint = "the API layer went unresponsive after a client disconnected; restart the Gateway"
    else:
        evidence.cause = where
        evidence.hint = "see the per-run table"


def _lingered(rows: list[dict[str, Any]], bad: dict[str, Any]) -> bool:
    """The run before `bad` used the same id and its connection was still open at the Gateway when `bad` began."""
    at = rows.index(bad)
    if at == 0:
        return False
    prev = rows[at - 1]
    return prev["client_id"] == bad["client_id"] and bool(bad.get("prev_open_at_start"))


def _ms(seconds: Any) -> float | None:
    return round(float(seconds) * 1000, 3) if isinstance(seconds, (int, float)) else None
