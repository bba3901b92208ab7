"""Every client x client id x read-only flag completes the API handshake.

Thin glue over harness.scenarios.run_handshake: the scenario does the work
and returns evidence; this file only chooses parameters and asserts on the
outcome the evidence carries.
"""

from __future__ import annotations

import pytest

from harness.scenarios import run_handshake

# 0 is the master-client id (ib_async also asks for auto-open orders with it),
# 1 the usual default, 100 a typical worker id; "random" is drawn per run
# from the seeded source (--ibgw-seed replays it).
CLIENT_IDS = [0, 1, 100, "random"]


@pytest.mark.parametrize("readonly", [True, False], ids=["readonly", "readwrite"])
@pytest.mark.parametrize("client_id_spec", CLIENT_IDS, ids=[f"id{c}" for c in CLIENT_IDS])
async def test_handshake_completes(gateway, client_factory, client_name, client_id_spec, readonly,
                                   client_id_source, harness_config, record_evidence, client_ids):
    client_id = client_id_source.randrange(1000, 32000) if client_id_spec == "random" else client_id_spec
    client_id = client_ids.take(client_id)  # a live run: an id from --ibgw-client-ids instead
    evidence = await run_handshake(gateway.endpoint, client_factory(client_name), client_id, readonly=readonly,
                                   timeout=harness_config.timeout, transcript=gateway.transcript)
    record_evidence(evidence)
    assert evidence.ok, evidence.summary_line()
    assert evidence.server_version is not None and evidence.server_version >= 100
    assert evidence.connect["next_valid_id"] is not None
    assert evidence.connect["accounts"], "managedAccounts was empty"
    assert "ping_ms" in evidence.measurements
