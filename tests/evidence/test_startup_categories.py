"""A failed start-up step gets a category a person recognises, never "unclassified".

Why: the report's Categories tab and the CI log line group failures by
cause; a start-up that dies on 200, a broken farm, a pacing violation or a
missing subscription must say so. The evidence comes from real runs of the
start-up scenario (the official ibapi, unmodified) against the mock and its
faults; the cases no fault produces without waiting out a timeout (354, an
unanswered request) are recorded evidence shapes.
"""

from __future__ import annotations

import pytest

from harness.clients import make_client
from harness.clients.startup import ContractSpec
from harness.core import categories as c
from harness.mock import MockGateway
from harness.scenarios import StartupPlan, run_app_startup
from harness.scenarios.causes import CAUSES
from harness.targets.base import TARGET_MOCK, Endpoint

TIMEOUT = 10.0
STARTUP_CATEGORIES = (c.NO_SECURITY_DEFINITION, c.DATA_FARM_BROKEN, c.PACING_VIOLATION, c.HISTORICAL_DATA_REFUSED,
                      c.MARKET_DATA_NOT_SUBSCRIBED, c.STARTUP_REQUEST_UNANSWERED)


async def _startup(faults: list[str], plan: StartupPlan, client_id: int):  # noqa: ANN202 - Evidence
    async with MockGateway(port=0, faults=faults) as gw:
        return await run_app_startup(Endpoint(TARGET_MOCK, "127.0.0.1", gw.port, "mock:default"),
                                     make_client("ibapi"), client_id, plan=plan, timeout=TIMEOUT)


@pytest.mark.parametrize(("faults", "plan", "step", "category"), [
    ([], StartupPlan(contract=ContractSpec("NOSUCHSYM")), "qualify", c.NO_SECURITY_DEFINITION),
    (["hmds-pacing"], StartupPlan(), "historical_bars", c.PACING_VIOLATION),
    (["hmds-farm-broken"], StartupPlan(), "historical_bars", c.DATA_FARM_BROKEN),
    ([], StartupPlan(what_to_show="TRADE"), "historical_bars", c.HISTORICAL_DATA_REFUSED),
    (["market-data-farm-broken"], StartupPlan(), "snapshot", c.DATA_FARM_BROKEN),
], ids=["200", "pacing", "hmds-farm", "162-other", "market-data-farm"])
async def test_a_failed_step_is_categorised_from_the_gateways_answer(faults, plan, step, category):
    evidence = await _startup(faults, plan, 81)
    assert not evidence.ok and evidence.failed_phase == step, evidence.summary_line()
    assert evidence.category == category, evidence.summary_line()
    assert evidence.summary_line().startswith(c.prefix(category))


@pytest.mark.parametrize(("row", "cause", "category"), [
    ({"outcome": "failed", "code": 354, "cause": "Requested market data is not subscribed."}, "", "market data not subscribed"),
    ({"outcome": "failed", "code": 10168, "cause": "Delayed market data is not enabled."}, "", "market data not subscribed"),
    ({"outcome": "failed", "code": 0, "cause": "no contract details and no error"}, "", "start-up request unanswered"),
    ({"outcome": "failed", "code": 0, "cause": "timed out"}, "", "start-up request unanswered"),
    ({"outcome": "failed"}, "snapshot failed: error 10089: Requested market data requires additional subscription",
     "market data not subscribed"),
])
def test_recorded_step_failures_map_to_their_category(row, cause, category):
    record = {"outcome": "failed", "failed_phase": "snapshot", "cause": cause, "details": {"steps": {"snapshot": row}}}
    assert c.categorize(record) == category


def test_an_unanswered_step_with_a_broken_farm_notice_at_connect_is_the_farm():
    record = {"outcome": "failed", "failed_phase": "historical_bars", "cause": "historical_bars failed: timed out",
              "connect": {"messages": [{"code": 2105, "text": "HMDS data farm connection is broken:ushmds"}]},
              "details": {"steps": {"historical_bars": {"outcome": "failed", "code": 0, "cause": "timed out"}}}}
    assert c.categorize(record) == c.DATA_FARM_BROKEN


def test_the_verdicts_side_by_side_table_is_read_for_the_users_step():
    record = {"outcome": "failed", "failed_phase": "historical_bars", "cause": "THE GATEWAY: both ...",
              "details": {"startup_steps": [
                  {"name": "historical_bars", "user": {"outcome": "failed", "code": 162,
                                                       "cause": "HMDS ...: Historical data request pacing violation"},
                   "reference": {"outcome": "failed", "code": 162}}]}}
    assert c.categorize(record) == c.PACING_VIOLATION


def test_every_start_up_category_has_sourced_causes_and_an_allure_rule():
    rules = {r["name"] for r in c.categories_json()}
    for name in STARTUP_CATEGORIES:
        assert name in rules and name in c.CATEGORY_TEXT
        for key in c.CATEGORY_CAUSES[name]:
            assert CAUSES[key].source
