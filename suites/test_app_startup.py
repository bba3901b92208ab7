"""A trading app's start-up through every client: connect, qualify AAPL, a day
of 5-minute bars, a delayed snapshot, the account's PnL (the field reports'
`./START_TRADER.sh AAPL`).

Two parts: the session's Gateway through every chosen client (so
`--client mypkg:factory` and a live `--gateway` run the team's own start-up),
and every mock profile 10.19..10.50 through ib_async and the official ibapi,
where each step must get data. Nothing waits on a request timeout to finish:
every step ends on the Gateway's answer or its error.
"""

from __future__ import annotations

import pytest

from harness.clients.startup import STEPS, supports
from harness.mock.profiles import PROFILES
from harness.protocol.messages import Contract
from harness.scenarios import StartupPlan, run_app_startup
from harness.targets import MockTarget

START_UP_PROFILES = sorted((name for name in PROFILES if name.startswith("10.")),
                           key=lambda n: tuple(int(p) for p in n.split(".")))
BUILT_IN = ("ib_async", "ibapi")
STEP_TIMEOUT = 15.0  # bounds a broken Gateway only; the mock answers in milliseconds


def _assert_every_step_got_data(evidence) -> None:  # noqa: ANN001 - Evidence
    steps = evidence.details["steps"]
    assert evidence.ok, f"{evidence.summary_line()} steps={steps}"
    for step in STEPS:
        assert steps[step]["outcome"] == "passed" and steps[step]["has_data"] is True, (step, steps[step])
        assert evidence.measurements[f"step_{step}_ms"] >= 0
    assert steps["historical_bars"]["bars_count"] > 0
    assert steps["qualify"]["con_id"] == 265598


async def test_app_startup_on_the_session_gateway(gateway, client_factory, client_name, harness_config,
                                                  record_evidence, client_ids):
    client = client_factory(client_name)
    if not any(supports(client, step) for step in STEPS):
        pytest.skip(f"{client_name} offers none of the start-up steps ({', '.join(STEPS)})")
    evidence = await run_app_startup(gateway.endpoint, client, client_id=client_ids.take(17),
                                     timeout=harness_config.timeout, transcript=gateway.transcript)
    record_evidence(evidence)
    assert evidence.ok, f"{evidence.summary_line()} steps={evidence.details['steps']}"
    assert all(evidence.checks.values()) and evidence.checks


@pytest.mark.parametrize("client_kind", BUILT_IN)
@pytest.mark.parametrize("profile", START_UP_PROFILES)
async def test_app_startup_at_every_profile(profile, client_kind, client_factory, record_evidence):
    target = MockTarget(profile)
    endpoint = await target.start()
    try:
        evidence = await run_app_startup(endpoint, client_factory(client_kind), client_id=71, timeout=STEP_TIMEOUT,
                                         transcript=lambda cid: _transcript(target, cid))
    finally:
        await target.stop()
    evidence.parameters["profile"] = profile
    record_evidence(evidence)
    _assert_every_step_got_data(evidence)
    snapshot = evidence.details["steps"]["snapshot"]
    assert snapshot["market_data_type"] == 3 and 10167 in snapshot["notices"], snapshot


async def test_unknown_symbol_fails_qualify_with_200(client_factory, record_evidence):
    target = MockTarget("10.50")
    endpoint = await target.start()
    try:
        evidence = await run_app_startup(endpoint, client_factory("ibapi"), client_id=72, timeout=STEP_TIMEOUT,
                                         plan=StartupPlan(contract=Contract.request("NOSUCHSYM")),
                                         transcript=lambda cid: _transcript(target, cid))
    finally:
        await target.stop()
    evidence.parameters["expected_outcome"] = "failed"  # a detector self-test: the 200 must stop the start-up
    record_evidence(evidence)
    assert not evidence.ok and evidence.failed_phase == "qualify"
    assert evidence.details["steps"]["qualify"]["code"] == 200
    assert evidence.measurements["step_qualify_ms"] < 1000, "a Gateway answers an unknown symbol at once"


def _transcript(target: MockTarget, client_id: int) -> str | None:
    if target.gateway is None:
        return None
    record = target.gateway.record_for_client(client_id)
    return record.to_text() if record is not None else None
