"""After connect the whole account arrives: accounts, nextValidId, positions,
account values, and every download-end message, through every client."""

from __future__ import annotations

from harness.scenarios import run_account_sync
from harness.targets import TARGET_MOCK


async def test_account_sync_complete(gateway, client_factory, client_name, harness_config, record_evidence,
                                     client_ids):
    evidence = await run_account_sync(
        gateway.endpoint, client_factory(client_name), client_id=client_ids.take(11), timeout=harness_config.timeout,
        # The mock's account always holds positions; a real paper account may hold none.
        expect_positions=gateway.endpoint.kind == TARGET_MOCK, transcript=gateway.transcript)
    record_evidence(evidence)
    assert evidence.ok, f"{evidence.summary_line()} checks={evidence.checks}"
    assert all(evidence.checks.values())
    assert evidence.measurements["account_values_count"] > 0
