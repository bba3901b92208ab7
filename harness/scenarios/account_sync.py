"""Scenario: after connect, does the account arrive completely?

The symptom it settles: "connected, but managedAccounts is empty" and its
cousins, a start-up request whose end message never comes. Each piece of
the start-up sync is a named check, so the evidence says which one is
missing rather than "timeout".
"""

from __future__ import annotations

from ..clients.base import PHASE_FIRST_ACCOUNT_VALUE, ClientAdapter
from ..core.record import FAILED, PASSED, Evidence
from ..targets.base import Endpoint
from .common import TranscriptSource, attach_transcript, connect_with_evidence, new_evidence

SCENARIO = "account_sync"
PHASE_SYNC = "account_sync"


async def run_account_sync(endpoint: Endpoint, client: ClientAdapter, client_id: int, *, timeout: float = 10.0,
                           expect_positions: bool = False,
                           transcript: TranscriptSource | None = None) -> Evidence:
    """Connect until ready, take an account snapshot, check every piece arrived.

    expect_positions: a mock account always holds positions; a real paper
    account may legitimately hold none, so only its end marker is required.
    """
    evidence = new_evidence(SCENARIO, endpoint, client, client_id=client_id, timeout_s=timeout,
                            expect_positions=expect_positions)
    try:
        if not await connect_with_evidence(evidence, client, endpoint, client_id, timeout=timeout, readonly=True):
            return evidence
        try:
            snap = await client.account_snapshot(timeout)
        except (TimeoutError, ConnectionError) as exc:
            evidence.outcome, evidence.failed_phase = FAILED, PHASE_SYNC
            evidence.cause = f"account snapshot did not complete: {str(exc) or type(exc).__name__}"
            evidence.hint = "a start-up request never got its end message (positionEnd, accountDownloadEnd, execDetailsEnd)"
            return evidence
        accounts = evidence.connect.get("accounts") or []
        checks = {
            "accounts_non_empty": bool(accounts),
            "next_valid_id_arrived": evidence.connect.get("next_valid_id") is not None,
            "positions_end": snap.positions_end,
            "account_values_present": bool(snap.account_values),
            "account_download_end": bool(accounts) and accounts[0] in snap.account_download_end,
            "executions_end": snap.executions_end,
        }
        if expect_positions:
            checks["positions_present"] = bool(snap.positions)
        evidence.checks = checks
        evidence.measurements.update({
            "positions_count": len(snap.positions),
            "account_values_count": len(snap.account_values),
            "portfolio_items_count": snap.portfolio_items,
        })
        missing = [name for name, ok in checks.items() if not ok]
        if missing:
            evidence.outcome, evidence.failed_phase = FAILED, PHASE_FIRST_ACCOUNT_VALUE if (
                "account_values_present" in missing) else PHASE_SYNC
            evidence.cause = "start-up sync incomplete: missing " + ", ".join(missing)
            evidence.hint = "the Gateway did not deliver the whole account; see checks and transcript"
        else:
            evidence.outcome = PASSED
    finally:
        await client.disconnect()
        attach_transcript(evidence, transcript, client_id)
        evidence.finish()
    return evidence
