"""The start-up scenario's verdicts, through the real clients against the mock.

Why beside the suite: the suite proves every step gets data at every
profile; these prove a refusal names its step and the Gateway's code (162
for a bar request HMDS refuses, 200 for an unknown contract), that live data
carries no delayed notice, and that a team's adapter offering only some
steps is reported step by step, never passed for steps it did not run.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.clients import make_client
from harness.clients.startup import StartupError
from harness.protocol.messages import Contract
from harness.scenarios import StartupPlan, run_app_startup
from harness.targets import MockTarget

TIMEOUT = 15.0
EURUSD = Contract.request("EUR", "CASH", "IDEALPRO", "USD")


@pytest.fixture
async def mock_endpoint() -> Any:
    target = MockTarget("10.45")
    endpoint = await target.start()
    yield endpoint
    await target.stop()


@pytest.mark.parametrize("client_kind", ["ib_async", "ibapi"])
async def test_hmds_refusal_names_the_bars_step_and_162(mock_endpoint: Any, client_kind: str) -> None:
    plan = StartupPlan(contract=EURUSD, what_to_show="TRADES")  # FX has no trades: HMDS refuses
    evidence = await run_app_startup(mock_endpoint, make_client(client_kind), 81, plan=plan, timeout=TIMEOUT)
    steps = evidence.details["steps"]
    assert steps["qualify"]["outcome"] == "passed" and steps["qualify"]["con_id"] == 12087792
    assert evidence.failed_phase == "historical_bars", evidence.summary_line()
    assert steps["historical_bars"]["code"] == 162
    assert "Historical Market Data Service error message" in steps["historical_bars"]["cause"]
    assert "snapshot" not in steps  # the app stops where the Gateway stopped it


@pytest.mark.parametrize("client_kind", ["ib_async", "ibapi"])
async def test_live_market_data_has_no_delayed_notice(mock_endpoint: Any, client_kind: str) -> None:
    plan = StartupPlan(contract=EURUSD, what_to_show="MIDPOINT", market_data_type=1)
    evidence = await run_app_startup(mock_endpoint, make_client(client_kind), 82, plan=plan, timeout=TIMEOUT)
    assert evidence.ok, evidence.summary_line()
    snap = evidence.details["steps"]["snapshot"]
    assert snap["market_data_type"] == 1 and snap["notices"] == []
    assert snap["bid"] < snap["ask"]


@pytest.mark.parametrize("client_kind", ["ib_async", "ibapi"])
async def test_each_client_refuses_an_unknown_contract_with_200(mock_endpoint: Any, client_kind: str) -> None:
    client = make_client(client_kind)
    await client.connect(mock_endpoint.host, mock_endpoint.port, 83, timeout=TIMEOUT)
    try:
        with pytest.raises(StartupError) as caught:
            await client.qualify(Contract.request("ZZZZ"), timeout=TIMEOUT)  # type: ignore[attr-defined]
        assert caught.value.code == 200
        # the connection is still good for the next step
        bars = await client.historical_bars(Contract.request("MSFT"), "2 D", "1 hour",  # type: ignore[attr-defined]
                                            timeout=TIMEOUT)
        assert bars and all(b.low <= b.high for b in bars)
    finally:
        await client.disconnect()


class _QualifyOnly:
    """A team's adapter that offers the connect interface plus qualify only."""

    def __init__(self) -> None:
        self._inner = make_client("ibapi")
        self.info = self._inner.info

    async def connect(self, *args: Any, **kwargs: Any) -> Any:
        return await self._inner.connect(*args, **kwargs)

    async def ping(self, timeout: float = 5.0) -> float:
        return await self._inner.ping(timeout)

    async def account_snapshot(self, timeout: float = 10.0) -> Any:
        return await self._inner.account_snapshot(timeout)

    async def disconnect(self) -> None:
        await self._inner.disconnect()

    async def qualify(self, spec: Contract, timeout: float = 10.0) -> Any:
        return await self._inner.qualify(spec, timeout=timeout)  # type: ignore[attr-defined]


async def test_steps_a_custom_client_lacks_are_reported_not_run(mock_endpoint: Any) -> None:
    evidence = await run_app_startup(mock_endpoint, _QualifyOnly(), 84, timeout=TIMEOUT)  # type: ignore[arg-type]
    steps = evidence.details["steps"]
    assert steps["qualify"]["outcome"] == "passed"
    for step in ("historical_bars", "snapshot", "pnl"):
        assert steps[step]["outcome"] == "not_run" and "offers no" in steps[step]["cause"]
    assert evidence.checks == {"qualify_has_data": True}
    assert evidence.measurements["steps_run_count"] == 1


async def test_a_client_without_any_step_fails_with_the_hint(mock_endpoint: Any) -> None:
    evidence = await run_app_startup(mock_endpoint, make_client("raw"), 85, timeout=TIMEOUT)
    assert not evidence.ok and "offers none of the start-up steps" in (evidence.cause or "")


async def test_an_unknown_step_is_refused_before_connecting(mock_endpoint: Any) -> None:
    with pytest.raises(ValueError, match="unknown start-up steps"):
        await run_app_startup(mock_endpoint, make_client("ibapi"), 86, plan=StartupPlan(steps=("trade",)))


@pytest.mark.parametrize("client_kind", ["ib_async", "ibapi"])
async def test_pacing_violation_fault_stops_the_bars_step(client_kind: str) -> None:
    target = MockTarget("10.30")
    endpoint = await target.start()
    try:
        assert target.gateway is not None
        target.gateway.set_fault("hmds-pacing")
        evidence = await run_app_startup(endpoint, make_client(client_kind), 87, timeout=TIMEOUT)
    finally:
        await target.stop()
    assert evidence.failed_phase == "historical_bars"
    step = evidence.details["steps"]["historical_bars"]
    assert step["code"] == 162 and "pacing violation" in step["cause"]


async def test_slow_contract_details_fault_delays_qualify_but_it_answers() -> None:
    target = MockTarget("10.50")
    endpoint = await target.start()
    try:
        assert target.gateway is not None
        target.gateway.set_fault("slow-contract-details=300")
        evidence = await run_app_startup(endpoint, make_client("ibapi"), 88, timeout=TIMEOUT)
    finally:
        await target.stop()
    assert evidence.ok, evidence.summary_line()
    assert evidence.measurements["step_qualify_ms"] >= 300  # the injected delay, not the mock's speed


async def test_isolated_worker_runs_the_field_reports_start_up(mock_endpoint: Any) -> None:
    """examples/isolated_worker: the app's own start-up (qualify AAPL, 5-minute bars, a snapshot, PnL)
    through its worker process, and a refusal comes back with the Gateway's code."""
    worker = "examples.isolated_worker.adapter:factory"
    evidence = await run_app_startup(mock_endpoint, make_client(worker), 89, timeout=TIMEOUT)
    assert evidence.ok, f"{evidence.summary_line()} {evidence.details['steps']}"
    assert evidence.details["steps"]["snapshot"]["notices"] == [10167]
    refused = await run_app_startup(mock_endpoint, make_client(worker), 90, timeout=TIMEOUT,
                                    plan=StartupPlan(contract=Contract.request("NOSUCHSYM")))
    assert refused.failed_phase == "qualify" and refused.details["steps"]["qualify"]["code"] == 200


@pytest.mark.parametrize("client_kind", ["ib_async", "ibapi"])
async def test_hmds_farm_broken_shows_2105_and_stops_the_bars_step(client_kind: str) -> None:
    target = MockTarget("10.19")
    endpoint = await target.start()
    try:
        assert target.gateway is not None
        target.gateway.set_fault("hmds-farm-broken")
        evidence = await run_app_startup(endpoint, make_client(client_kind), 91, timeout=TIMEOUT)
    finally:
        await target.stop()
    assert 2105 in [m["code"] for m in evidence.connect["messages"]]
    assert evidence.failed_phase == "historical_bars"
    assert evidence.details["steps"]["historical_bars"]["code"] == 162


@pytest.mark.parametrize("client_kind", ["ib_async", "ibapi"])
async def test_market_data_farm_broken_gives_a_snapshot_without_prices(client_kind: str) -> None:
    target = MockTarget("10.50")
    endpoint = await target.start()
    try:
        assert target.gateway is not None
        target.gateway.set_fault("market-data-farm-broken")
        evidence = await run_app_startup(endpoint, make_client(client_kind), 92, timeout=TIMEOUT)
    finally:
        await target.stop()
    assert 2103 in [m["code"] for m in evidence.connect["messages"]]
    assert evidence.failed_phase == "snapshot", evidence.summary_line()
    assert evidence.cause == "answered without data: snapshot_has_data"
    assert evidence.details["steps"]["pnl"]["outcome"] == "passed"  # the app got past it; the quote was empty
