"""Shared steps of every connect-based scenario: build the evidence record,
run the connect, turn a HandshakeError into evidence instead of an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from ..clients.base import PHASES, ClientAdapter, ConnectResult, HandshakeError
from ..clients.readiness import connect_until_ready
from ..core.record import FAILED, Evidence
from ..recording.replay import REFUSAL_PREFIX
from ..targets.base import Endpoint
from .judge import failure_causes

# Optional source of the Gateway-side transcript for a client id (the mock
# target provides one; a real Gateway does not).
TranscriptSource = Callable[[int], str | None]


def new_evidence(scenario: str, endpoint: Endpoint, client: ClientAdapter, **parameters: object) -> Evidence:
    return Evidence(scenario=scenario, target=endpoint.to_dict(), client=asdict(client.info),
                    parameters=dict(parameters))


def record_connect(evidence: Evidence, result: ConnectResult) -> None:
    evidence.connect = result.to_dict()
    evidence.server_version = result.server_version
    for phase in PHASES:
        if phase in result.phases:
            evidence.measurements[f"{phase}_ms"] = round(result.phases[phase] * 1000, 3)


async def connect_with_evidence(evidence: Evidence, client: ClientAdapter, endpoint: Endpoint, client_id: int,
                                *, timeout: float, readonly: bool) -> bool:
    """Connect until ready; on failure fill the evidence's failed phase and cause."""
    try:
        result = await connect_until_ready(client, endpoint, client_id, timeout=timeout, readonly=readonly)
    except HandshakeError as exc:
        if exc.result is not None:
            record_connect(evidence, exc.result)
        evidence.outcome, evidence.failed_phase = FAILED, exc.phase
        evidence.cause, evidence.hint = exc.cause, exc.hint
        settled = failure_causes(exc.phase, exc.cause)
        if settled and settled[0].key in ("non_tws", "version_range"):  # the bytes settle it: the table's meaning
            evidence.hint = f"{settled[0].title}: {settled[0].meaning}"
        _name_replay_refusal(evidence, exc)
        return False
    record_connect(evidence, result)
    return True


def _name_replay_refusal(evidence: Evidence, exc: HandshakeError) -> None:
    """A replay that cannot serve the connection said why before closing it
    (recording/replay.py REFUSAL_PREFIX): that reason leads the cause, and
    its hint replaces the guess a bare close invites ("client id in use")."""
    for message in exc.result.messages if exc.result is not None else []:
        if message.message.startswith(REFUSAL_PREFIX):
            reason, _, hint = message.message.partition("; hint: ")
            evidence.cause = f"{reason}; the client then reported: {exc.cause}"
            evidence.hint = hint or evidence.hint
            return


def attach_transcript(evidence: Evidence, source: TranscriptSource | None, client_id: int) -> None:
    if source is not None:
        evidence.transcript = source(client_id)
