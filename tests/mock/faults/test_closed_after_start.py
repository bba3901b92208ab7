"""The 10.30 fixture: a bare close right after startApi, as reported on
10.30.1 (ib-api-reloaded/ib_async#143: "Peer closed connection. clientId
123 already in use?" with a unique id). No error 326 is sent; ib_async's
wording is its own guess for any early close, so the harness's verdicts
say what was seen: a close after startApi, no 326."""

from __future__ import annotations

import logging

import pytest
from ib_async import IB

from harness.clients.base import HandshakeError
from harness.clients.raw import RawClient
from harness.mock.gateway import MockGateway
from harness.mock.profiles import get_profile
from harness.scenarios.doctor import CAUSE_CLOSED_AFTER_START, CAUSE_ID_STUCK, RUNG_CLIENT_ID, run_doctor
from harness.scenarios.zombie import CAUSE_CLOSED_AFTER_START as ZOMBIE_CLOSED
from harness.scenarios.zombie import run_zombie
from harness.targets.base import Endpoint

HOST = "127.0.0.1"
READY = 5.0


async def _session(gw: MockGateway, client_id: int) -> None:
    client = RawClient(await_account_value=False)
    await client.connect(HOST, gw.port, client_id, timeout=READY)
    await client.disconnect()
    assert await gw.wait_client_id_free(client_id, timeout=5.0)


def test_the_10_30_profile_carries_the_reported_signature() -> None:
    profile = get_profile("10.30")
    assert profile.default_faults == ("closed-after-start-api=30",)
    assert "ib-api-reloaded/ib_async#143" in profile.regression_source


async def test_a_unique_id_is_closed_after_start_api_without_326() -> None:
    async with MockGateway(HOST, 0, profile="10.30") as gw:
        await _session(gw, 1)  # the first client is served; its leaving arms the fault
        client = RawClient(await_account_value=False)
        with pytest.raises(HandshakeError) as info:
            await client.connect(HOST, gw.port, 777, timeout=READY)  # never used before
        assert info.value.phase == "next_valid_id"
        assert 326 not in [msg.code for msg in info.value.result.messages]
        assert "closed right after startApi" in (gw.record_for_client(777).close_cause or "")


async def test_ib_async_words_the_bare_close_as_client_id_in_use(caplog: pytest.LogCaptureFixture) -> None:
    """The real client, unmodified: its own message for this close is the one in the report."""
    async with MockGateway(HOST, 0, profile="10.30") as gw:
        await _session(gw, 1)
        ib = IB()
        with caplog.at_level(logging.ERROR, logger="ib_async"), pytest.raises((ConnectionError, TimeoutError)):
            await ib.connectAsync(HOST, gw.port, clientId=778, timeout=3)
        ib.disconnect()
    assert "clientId 778 already in use?" in caplog.text
    assert "326" not in caplog.text


async def test_doctor_says_what_was_seen() -> None:
    async with MockGateway(HOST, 0, profile="10.30") as gw:
        await _session(gw, 1)
        result = await run_doctor(HOST, gw.port, client_id=950, timeout=2.0)
    assert result.diagnosis == [CAUSE_CLOSED_AFTER_START], result.diagnosis
    assert CAUSE_ID_STUCK not in result.diagnosis  # a fresh id is closed too: nothing says the id is stuck
    rung = result.rung(RUNG_CLIENT_ID)
    assert rung.evidence["error_326"] is False and rung.evidence["fresh_id_helps"] is False
    assert "no 326" in rung.summary


async def test_zombie_scenario_names_the_close_not_a_stuck_id() -> None:
    async with MockGateway(HOST, 0, faults=["closed-after-start-api=30"]) as gw:
        evidence = await run_zombie(Endpoint("mock", HOST, gw.port, "mock:test"), "raw",
                                    lambda: RawClient(await_account_value=False), runs=3, client_id=90,
                                    rotate_ids=True, timeout=2.0, settle_timeout=0.5, stop_at_first_failure=True)
    assert not evidence.ok
    assert evidence.cause.startswith(ZOMBIE_CLOSED), evidence.cause
    assert "not refused" in evidence.cause
