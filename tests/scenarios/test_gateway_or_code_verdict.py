"""The Gateway-or-code verdict from both sides' evidence, against the mock
with the faults that make the field reports' arguments reproducible."""

from __future__ import annotations

from harness.clients import make_client
from harness.clients.naive import NaiveClient
from harness.mock import MockGateway
from harness.scenarios.gateway_or_code import (
    VERDICT_BOTH_OK,
    VERDICT_GATEWAY,
    VERDICT_USER_CODE,
    ClientRun,
    judge,
    run_gateway_or_code,
    wire_from_mock,
)
from harness.targets.base import TARGET_MOCK, Endpoint


def endpoint(gw: MockGateway) -> Endpoint:
    return Endpoint(TARGET_MOCK, "127.0.0.1", gw.port, "mock:default")


async def test_late_accounts_and_a_client_that_guesses_is_the_users_code():
    """The brief's example: managedAccounts 1.8 s after startApi; the
    naive client (field report 003's check) gives up after 1 s."""
    async with MockGateway(port=0, faults=["delayed-accounts=1800"]) as gw:
        evidence = await run_gateway_or_code(endpoint(gw), NaiveClient, lambda: make_client("raw"), client_id=5,
                                             timeout=5, wire=wire_from_mock(gw))
    d = evidence.details
    assert (d["verdict"], d["parting_phase"]) == (VERDICT_USER_CODE, "managed_accounts"), d["explanation"]
    assert not evidence.ok and evidence.failed_phase == "managed_accounts"
    text = d["explanation"]
    assert text.startswith("THE USER'S CODE (naive)")
    assert "the Gateway sent managedAccounts 1.8 s after startApi to the reference client" in text
    assert "before managedAccounts arrived" in text and "gave up after 1." in text
    assert d["user"]["wire"]["closed_at_s"] < 1.8 <= d["reference"]["phases"]["managed_accounts"] + 0.2
    assert "## user (naive" in evidence.transcript and "## reference (raw" in evidence.transcript


async def test_both_failing_the_same_way_is_the_gateway():
    async with MockGateway(port=0, faults=["silent-handshake"]) as gw:
        evidence = await run_gateway_or_code(endpoint(gw), lambda: make_client("ib_async"),
                                             lambda: make_client("raw"), client_id=7, timeout=0.5,
                                             wire=wire_from_mock(gw))
    d = evidence.details
    assert (d["verdict"], d["parting_phase"]) == (VERDICT_GATEWAY, "server_version"), d["explanation"]
    assert d["explanation"].startswith("THE GATEWAY: both ib_async and the reference client (raw) failed the same way")


async def test_a_healthy_gateway_serves_both():
    async with MockGateway(port=0) as gw:
        evidence = await run_gateway_or_code(endpoint(gw), lambda: make_client("ibapi"), lambda: make_client("raw"),
                                             client_id=9, timeout=5, wire=wire_from_mock(gw))
    assert evidence.ok and evidence.details["verdict"] == VERDICT_BOTH_OK
    assert evidence.checks == {"user_client_ok": True, "reference_client_ok": True}


def test_only_the_reference_failing_is_inconclusive():
    user, ref = ClientRun("mine", 1, ok=True), ClientRun("raw", 2, failed_phase="next_valid_id", cause="timeout")
    verdict, phase, text = judge(user, ref)
    assert (verdict, phase) == ("inconclusive", "next_valid_id") and "rerun" in text
