"""Running the ladder: the rung order, the result record, and closing every connection.

Why apart from the rungs: this is the only module that opens connections in order and decides
what a run returns; the rungs only judge what it found."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .attempt import Attempt, fresh_client_id, try_handshake
from .diagnosis import dedupe, diagnosis_row
from .handshake import handshake_rungs
from .host import HostProblem, diagnose_host
from .rungs import account_kind_rung, close_wait_rung, connectivity_rung, sync_rung
from .sockets import survey_sockets
from .state import Ladder
from .sync import safe_sync
from .vocabulary import CLOSE_WAIT_THRESHOLD, FAIL, OK, RUNG_PORT, RUNGS, SKIP, Rung, skip_after


@dataclass
class DoctorResult:
    host: str
    port: int
    client_id: int
    timeout: float
    rungs: list[Rung] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)  # the causes that remain possible, most likely first
    # The table row behind each diagnosis line (same order): meaning, fix and public source.
    causes: list[dict[str, Any]] = field(default_factory=list)
    healthy: bool = False
    elapsed_s: float = 0.0

    def rung(self, name: str) -> Rung:
        for rung in self.rungs:
            if rung.name == name:
                return rung
        raise KeyError(name)

    @property
    def exit_code(self) -> int:
        return 0 if self.healthy else 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["exit_code"] = self.exit_code
        return data


async def run_doctor(host: str = "127.0.0.1", port: int = 4002, *, client_id: int | None = None,
                     timeout: float = 5.0, close_wait_threshold: int = CLOSE_WAIT_THRESHOLD,
                     settle: float | None = None, client_range: tuple[int, int] | None = None) -> DoctorResult:
    """Run every rung and return the structured result. Never raises for a
    Gateway fault; every connection it opens is closed before it returns."""
    started = time.monotonic()
    if client_id is None:
        client_id = fresh_client_id()
    settle = min(0.5, timeout / 4) if settle is None else settle
    result = DoctorResult(host, port, client_id, timeout)
    rungs: dict[str, Rung] = {}
    diagnosis: list[str] = []
    attempts: list[Attempt] = []
    try:
        unresolved = await diagnose_host(host, timeout)
        if unresolved is not None:
            _unresolved_rungs(unresolved, host, port, rungs, diagnosis)
            return _finish(result, rungs, diagnosis, started)
        survey = await survey_sockets(host, port, settle)
        first = await try_handshake(host, port, client_id, timeout, client_range)
        attempts.append(first)
        active = await handshake_rungs(first, Ladder(rungs, diagnosis, attempts, survey, host, port, timeout,
                                                       close_wait_threshold, client_range))
        if active is not None:
            budget = max(0.5, min(timeout, started + 2.75 * timeout - time.monotonic()))
            sync_rung(await safe_sync(active.client, budget), rungs, diagnosis, budget)
            connectivity_rung(active, rungs, diagnosis)  # after the sync: notices that came meanwhile count
            account_kind_rung(active, port, rungs, diagnosis)
        close_wait_rung(survey, port, close_wait_threshold, rungs, diagnosis, healthy_handshake=active is not None)
    finally:
        for attempt in attempts:
            try:
                await asyncio.wait_for(attempt.client.disconnect(), 5.0)
            except (asyncio.TimeoutError, OSError, ConnectionError):
                pass
    return _finish(result, rungs, diagnosis, started)


def _finish(result: DoctorResult, rungs: dict[str, Rung], diagnosis: list[str], started: float) -> DoctorResult:
    for name in RUNGS:
        result.rungs.append(rungs.get(name) or Rung(name, SKIP, {}, "", "not reached"))
    result.diagnosis = dedupe(diagnosis)
    result.causes = [diagnosis_row(text) for text in result.diagnosis]
    result.healthy = all(r.verdict in (OK, SKIP) for r in result.rungs) and not result.diagnosis
    result.elapsed_s = time.monotonic() - started
    return result


def _unresolved_rungs(problem: HostProblem, host: str, port: int, rungs: dict[str, Rung],
                      diagnosis: list[str]) -> None:
    """A host name that does not resolve: the one cause, nothing else tried."""
    rungs[RUNG_PORT] = Rung(RUNG_PORT, FAIL, {"target": f"{host}:{port}", "outcome": "unresolved",
                                              "cause": problem.cause, "resolver": problem.meaning},
                            problem.hint, f"{problem.cause}: {problem.meaning}")
    diagnosis.append(problem.cause)
    skip_after(rungs, problem.cause, *RUNGS[1:])
