"""Consecutive connect/disconnect runs leave no zombies: every run reaches
API-ready and CLOSE_WAIT on the Gateway port returns to its baseline.

The detector self-tests at the bottom prove the scenario catches what it
exists to catch: against the mock's zombie faults it must fail, with the
cause that fits the evidence.
"""

from __future__ import annotations

import pytest

from harness.scenarios.zombie import CAUSE_RED, CAUSE_STUCK_ID, CAUSE_ZOMBIES, run_zombie


@pytest.mark.parametrize("rotate_ids", [False, True], ids=["same-id", "rotating-ids"])
@pytest.mark.parametrize("mode, runs", [("disconnect", 10), ("process-exit", 5)],
                         ids=["disconnect-x10", "process-exit-x5"])
async def test_consecutive_runs_leave_no_zombies(gateway, client_factory, client_name, mode, runs, rotate_ids,
                                                 harness_config, record_evidence, zombie_plan, client_ids):
    plan = zombie_plan(runs)  # a real Gateway: fewer cycles, paced, stop at the first failure
    evidence = await run_zombie(gateway.endpoint, client_name, lambda: client_factory(client_name),
                                client_id=client_ids.take(60, plan["runs"]), rotate_ids=rotate_ids, mode=mode,
                                timeout=harness_config.timeout, **plan)
    record_evidence(evidence)
    assert evidence.ok, evidence.summary_line()
    assert evidence.measurements["runs_ok_count"] == plan["runs"]
    assert evidence.measurements["close_wait_final_count"] <= evidence.measurements["close_wait_baseline_count"]


async def test_socket_abort_leaves_no_zombies(gateway, client_factory, harness_config, record_evidence, zombie_plan,
                                              client_ids):
    """RST instead of FIN (a crashed client, a dropped path); only the raw client can do it on demand."""
    evidence = await run_zombie(gateway.endpoint, "raw", lambda: client_factory("raw"), client_id=client_ids.take(70),
                                mode="abort", timeout=harness_config.timeout, **zombie_plan(10))
    record_evidence(evidence)
    assert evidence.ok, evidence.summary_line()


@pytest.mark.parametrize("fault, rotate_ids, cause", [
    ("close-wait-leak=3", True, CAUSE_ZOMBIES),
    ("red-after-disconnect", True, CAUSE_RED),
    ("client-id-stuck=30", False, CAUSE_STUCK_ID),
], ids=["close-wait-leak", "red-after-disconnect", "client-id-stuck"])
async def test_detector_names_the_zombie_cause(mock_gateway, gateway, client_factory, fault, rotate_ids, cause,
                                               record_evidence):
    mock_gateway.set_fault(fault)
    evidence = await run_zombie(gateway.endpoint, "raw", lambda: client_factory("raw"), runs=5, client_id=80,
                                rotate_ids=rotate_ids, timeout=1.5, settle_timeout=0.5)
    evidence.parameters.update(fault=fault, expected_outcome="failed")
    record_evidence(evidence)
    assert not evidence.ok
    assert evidence.cause is not None and evidence.cause.startswith(cause), evidence.cause
