"""The gateway-or-code verdict names the start-up step where the user's code and the reference part.

Why: "connected and synced, but the app never boots" is argued step by
step: did the Gateway refuse the bars, or did our code ask for them
wrongly? The user's client (here a team-style adapter over the real
ib_async, unmodified) and the start-up reference (the official ibapi)
run the same start-up against the same mock; the verdict says at which
numbered step they part, with both sides' per-step evidence side by side.
"""

from __future__ import annotations

from harness.cli.compare import print_verdict
from harness.clients import make_client
from harness.clients.ib_async_client import IbAsyncClient
from harness.clients.startup import Bar, ContractSpec
from harness.mock import MockGateway
from harness.scenarios.app_startup import StartupPlan
from harness.scenarios.gateway_or_code import (
    VERDICT_BOTH_OK,
    VERDICT_GATEWAY,
    VERDICT_INCONCLUSIVE,
    VERDICT_USER_CODE,
    judge_startup,
    run_gateway_or_code,
    wire_from_mock,
)
from harness.targets.base import TARGET_MOCK, Endpoint

TIMEOUT = 10.0
ORDER = ["connect", "qualify", "historical_bars", "snapshot", "pnl"]


def endpoint(gw: MockGateway) -> Endpoint:
    return Endpoint(TARGET_MOCK, "127.0.0.1", gw.port, "mock:default")


class MisspelledWhatToShow(IbAsyncClient):
    """A team's adapter whose bar request carries a typo: whatToShow 'TRADE'
    for 'TRADES', which HMDS refuses with 162 at once. (A misspelled bar
    size gets 321, which ib_async files as a warning and waits out its
    request timeout: a test must not wait on that.)"""

    async def historical_bars(self, spec: ContractSpec, duration: str = "1 D", bar_size: str = "5 mins",
                              what_to_show: str = "TRADES", timeout: float = 30.0) -> list[Bar]:
        return await super().historical_bars(spec, duration, bar_size, "TRADE", timeout)


async def _verdict(gw: MockGateway, user, client_id: int):  # noqa: ANN001, ANN202 - factory, Evidence
    return await run_gateway_or_code(endpoint(gw), user, lambda: make_client("raw"), client_id=client_id,
                                     timeout=TIMEOUT, wire=wire_from_mock(gw), startup=StartupPlan(),
                                     startup_reference=lambda: make_client("ibapi"))


async def test_a_bad_bar_request_is_the_users_code_at_step_3(capsys):
    async with MockGateway(port=0) as gw:
        evidence = await _verdict(gw, MisspelledWhatToShow, 21)
    d = evidence.details
    assert (d["verdict"], d["parting_phase"]) == (VERDICT_USER_CODE, "historical_bars"), d["explanation"]
    text = d["explanation"]
    assert text.startswith("THE USER'S CODE (ib_async): the reference (ibapi) got bars (")
    assert "at step 3, your client stopped at step 3 (historical bars) after connect, qualify succeeded" in text
    assert "error 162: Historical Market Data Service error message:No historical market data for AAPL/STK@SMART Trade" in text
    assert "step 2 qualify: reference ok" in text and "| yours ok" in text  # side by side
    assert not evidence.ok and evidence.failed_phase == "historical_bars"
    rows = {row["name"]: row for row in d["startup_steps"]}
    assert [row["step"] for row in d["startup_steps"]] == [1, 2, 3, 4, 5]
    assert rows["qualify"]["user"]["con_id"] == rows["qualify"]["reference"]["con_id"] == 265598
    assert rows["historical_bars"]["user"]["code"] == 162
    assert rows["historical_bars"]["user"]["ms"] < 5000  # the refusal came at once: no request timeout ran out
    assert rows["historical_bars"]["reference"]["bars_count"] > 0
    assert rows["snapshot"]["user"] is None and rows["snapshot"]["user_says"] == "not reached"
    assert evidence.checks["reference_startup_ok"] and not evidence.checks["user_startup_ok"]
    assert evidence.measurements["reference_step_historical_bars_ms"] >= 0
    assert evidence.category == "historical data refused"  # not "unclassified", not "startup sync incomplete"
    # `ibgw doctor --client` prints the same steps side by side before the verdict
    assert print_verdict(evidence, [], "mypkg:factory", as_json=False) == 1
    out = capsys.readouterr().out
    assert "  step 3 historical bars  reference ok" in out and "| yours FAILED" in out
    assert out.index("step 5 PnL") < out.index("Verdict: THE USER'S CODE")


async def test_both_refused_bars_by_pacing_is_the_gateway():
    async with MockGateway(port=0, faults=["hmds-pacing"]) as gw:
        evidence = await _verdict(gw, lambda: make_client("ib_async"), 24)
    d = evidence.details
    assert (d["verdict"], d["parting_phase"]) == (VERDICT_GATEWAY, "historical_bars"), d["explanation"]
    assert d["explanation"].startswith("THE GATEWAY: both your client (ib_async) and the reference (ibapi) stopped "
                                       "at step 3 (historical bars) after connect, qualify succeeded")
    assert d["explanation"].count("pacing violation") >= 2
    assert evidence.category == "pacing violation"  # the report groups it by the Gateway's refusal


async def test_a_client_that_boots_and_the_reference_agree_step_by_step():
    async with MockGateway(port=0) as gw:
        evidence = await _verdict(gw, lambda: make_client("ib_async"), 27)
    d = evidence.details
    assert evidence.ok and d["verdict"] == VERDICT_BOTH_OK, d["explanation"]
    assert "every start-up step (connect, qualify, historical bars, snapshot, PnL)" in d["explanation"]
    assert all(row["user_says"].startswith("ok") and row["reference_says"].startswith("ok")
               for row in d["startup_steps"]), d["startup_steps"]
    assert evidence.checks == {"user_client_ok": True, "reference_client_ok": True, "user_startup_ok": True,
                               "reference_startup_ok": True}


async def test_without_a_plan_the_verdict_stays_the_handshake_one():
    async with MockGateway(port=0) as gw:
        evidence = await run_gateway_or_code(endpoint(gw), lambda: make_client("ib_async"),
                                             lambda: make_client("raw"), client_id=30, timeout=TIMEOUT,
                                             wire=wire_from_mock(gw))
    assert evidence.ok and "startup_steps" not in evidence.details
    assert evidence.details["user"]["startup"] is None


def test_judge_startup_skips_steps_the_client_does_not_offer_and_flags_a_flaky_reference():
    ok = {"outcome": "passed", "ms": 5.0, "has_data": True, "con_id": 265598, "bars_count": 3}
    user = {"connect": ok, "qualify": ok, "historical_bars": {"outcome": "not_run", "cause": "offers no"},
            "snapshot": ok, "pnl": ok}
    ref = {"connect": ok, "qualify": ok, "historical_bars": ok, "snapshot": ok, "pnl": ok}
    assert judge_startup("mine", "ibapi", ORDER, user, ref)[0] == VERDICT_BOTH_OK
    flaky = {**ref, "snapshot": {"outcome": "failed", "ms": 9.0, "code": 0, "cause": "no quote"}}
    verdict, step, text = judge_startup("mine", "ibapi", ORDER, user, flaky)
    assert (verdict, step) == (VERDICT_INCONCLUSIVE, "snapshot") and "at step 4" in text and "rerun" in text
    empty = {**user, "pnl": {"outcome": "passed", "ms": 1.0, "has_data": False}}
    verdict, step, text = judge_startup("mine", "ibapi", ORDER, empty, ref)
    assert (verdict, step) == (VERDICT_USER_CODE, "pnl") and "answered without data" in text
    assert "the reference (ibapi) got PnL at step 5, your client stopped at step 5 (PnL)" in text

