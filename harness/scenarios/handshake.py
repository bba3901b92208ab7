"""Scenario: does the API handshake complete, and how long does each phase take?

The symptom it settles: "the port accepts but the handshake never
completes". The evidence names the phase that did not complete and how
long each completed phase took, through the chosen real client.
"""

from __future__ import annotations

from ..clients.base import ClientAdapter
from ..core.record import FAILED, PASSED, Evidence
from ..targets.base import Endpoint
from .common import TranscriptSource, attach_transcript, connect_with_evidence, new_evidence

SCENARIO = "handshake"


async def run_handshake(endpoint: Endpoint, client: ClientAdapter, client_id: int, *, readonly: bool = True,
                        timeout: float = 10.0, transcript: TranscriptSource | None = None) -> Evidence:
    """Connect until ready, ping once, disconnect; never raises for a Gateway failure."""
    evidence = new_evidence(SCENARIO, endpoint, client, client_id=client_id, readonly=readonly, timeout_s=timeout)
    try:
        if await connect_with_evidence(evidence, client, endpoint, client_id, timeout=timeout, readonly=readonly):
            try:
                evidence.measurements["ping_ms"] = round(await client.ping(timeout) * 1000, 3)
                evidence.outcome = PASSED
            except (TimeoutError, ConnectionError) as exc:
                evidence.outcome, evidence.failed_phase = FAILED, "ping"
                evidence.cause = f"reqCurrentTime got no answer: {str(exc) or type(exc).__name__}"
                evidence.hint = "the API accepted the session but stopped answering requests"
    finally:
        await client.disconnect()
        attach_transcript(evidence, transcript, client_id)
    return evidence.finish()
