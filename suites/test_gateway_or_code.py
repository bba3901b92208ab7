"""Gateway or our code? The chosen client and the harness's reference client
(raw, waiting for nextValidId and managedAccounts by event) run back to back
against the same Gateway; the test passes when both succeed and otherwise
fails with the verdict: the Gateway (both fail the same way) or the user's
code (the reference succeeds), naming the phase where they part. When the
client offers start-up steps (qualify, bars, snapshot, PnL), the official
ibapi runs them too and the verdict names the start-up step where they part.

Runs for a team's own client (--client module.path:factory), or for every
chosen client with --ibgw-compare.
"""

from __future__ import annotations

import pytest

from harness.clients import CLIENT_NAMES
from harness.pytest_plugin.live import wire_source
from harness.scenarios import StartupPlan
from harness.scenarios.gateway_or_code import run_gateway_or_code


async def test_gateway_or_code(gateway, client_factory, client_name, harness_config, record_evidence, client_ids,
                               pytestconfig):
    if client_name in CLIENT_NAMES and not pytestconfig.getoption("--ibgw-compare"):
        pytest.skip("gateway-or-code runs for a team's own client (--client module.path:factory) "
                    "or with --ibgw-compare")
    first = client_ids.take(50, 3)
    evidence = await run_gateway_or_code(gateway.endpoint, lambda: client_factory(client_name),
                                         lambda: client_factory("raw"), client_id=first,
                                         reference_client_id=first + 1, timeout=harness_config.timeout,
                                         wire=wire_source(gateway), startup=StartupPlan(),
                                         startup_reference=lambda: client_factory("ibapi"),
                                         startup_reference_client_id=first + 2)
    record_evidence(evidence)
    assert evidence.ok, evidence.details["explanation"]
    assert evidence.details["verdict"] == "both-ok"
