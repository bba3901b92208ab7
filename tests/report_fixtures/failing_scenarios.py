"""Scenario tests that FAIL on purpose, one per injected mock fault: the
input of tests/evidence/test_report.py, which runs this file in a subprocess with
allure output and checks that each failure lands in the category that
names its cause.

Not collected by `make test` (the name does not match test_*.py); run it
only by path. Each test asserts what a real suite asserts (the scenario
passed) with the real suite's message (Evidence.summary_line()), so the
category comes from the evidence exactly as it would in a real run.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from harness.core.categories import (
    API_NOT_READY,
    BUILD_TOO_OLD,
    CLIENT_ID_STUCK,
    GATEWAY_UNREACHABLE,
    HANDSHAKE_UNANSWERED,
    HARNESS_ERROR,
    STARTUP_SYNC_INCOMPLETE,
    ZOMBIE_SOCKETS,
)
from harness.scenarios import run_account_sync, run_handshake
from harness.scenarios.zombie import run_zombie
from harness.targets import Endpoint

T = 0.6  # connect timeout where the fault makes the connect fail
# Where an earlier step must succeed before the fault bites (the handshake
# before a late account, run 1 before a stuck id): room for a loaded CI box.
T_FIRST_OK = 1.5

# Every mock fault that can make a scenario fail is here. Two cannot, so
# they have no category: connectivity-loss (1100/1102 notices on a live
# connection; the handshake and the account still complete) and
# read-only-api (orders refused with 321; the harness never orders).

HANDSHAKE_FAULTS = {
    # test id: (fault, client, expected category)
    "silent-handshake": ("silent-handshake", "raw", HANDSHAKE_UNANSWERED),
    "silent-handshake-ib_async": ("silent-handshake", "ib_async", HANDSHAKE_UNANSWERED),
    "close-after-accept": ("close-after-accept", "raw", HANDSHAKE_UNANSWERED),
    "max-clients": ("max-clients=0", "raw", HANDSHAKE_UNANSWERED),
    # Latency delays the replies to requests, not the start-up burst: the
    # handshake completes and the account data is what comes too late.
    "latency": ("latency=2000", "raw", STARTUP_SYNC_INCOMPLETE),
    "no-next-valid-id": ("no-next-valid-id", "raw", API_NOT_READY),
    "no-next-valid-id-ib_async": ("no-next-valid-id", "ib_async", API_NOT_READY),
    "delayed-accounts": ("delayed-accounts=3000", "raw", API_NOT_READY),
    "delayed-next-id": ("delayed-next-id=3000", "raw", API_NOT_READY),
    "max-server-version": ("max-server-version=150", "raw", BUILD_TOO_OLD),
}
SYNC_FAULTS = {
    "missing-end-positions": ("missing-end=positions", STARTUP_SYNC_INCOMPLETE),
    "missing-end-account": ("missing-end=account", STARTUP_SYNC_INCOMPLETE),
    "missing-end-executions": ("missing-end=executions", STARTUP_SYNC_INCOMPLETE),
}
ZOMBIE_FAULTS = {
    # test id: (fault, rotate ids, settle timeout s, expected category). The
    # settle wait ends as soon as CLOSE_WAIT is back at its baseline, so a
    # generous one costs only the leak case, and a loaded CI box never
    # mistakes a slow close for a leak.
    "close-wait-leak": ("close-wait-leak=2", True, 0.3, ZOMBIE_SOCKETS),
    "client-id-stuck": ("client-id-stuck=30", False, 2.0, CLIENT_ID_STUCK),
    "red-after-disconnect": ("red-after-disconnect", True, 2.0, HANDSHAKE_UNANSWERED),
}

# Allure result name -> the category its failure must land in.
EXPECTED_CATEGORY: dict[str, str] = {
    **{f"test_handshake_fault[{k}]": v[2] for k, v in HANDSHAKE_FAULTS.items()},
    **{f"test_sync_fault[{k}]": v[1] for k, v in SYNC_FAULTS.items()},
    **{f"test_zombie_fault[{k}]": v[3] for k, v in ZOMBIE_FAULTS.items()},
    "test_gateway_down": GATEWAY_UNREACHABLE,
    "test_restart_window": GATEWAY_UNREACHABLE,
    "test_harness_error": HARNESS_ERROR,
}


@pytest.mark.parametrize("case", list(HANDSHAKE_FAULTS))
async def test_handshake_fault(mock_gateway, gateway, client_factory, record_evidence, case):
    fault, client_name, _ = HANDSHAKE_FAULTS[case]
    mock_gateway.set_fault(fault)
    # The raw client offering ib_async's range meets a build capped at 150.
    client = client_factory("raw", min_version=157) if fault.startswith("max-server-version") else (
        client_factory(client_name))
    timeout = T_FIRST_OK if fault.startswith("latency") else T
    evidence = await run_handshake(gateway.endpoint, client, 301, timeout=timeout, transcript=gateway.transcript)
    record_evidence(evidence)
    assert evidence.ok, evidence.summary_line()


@pytest.mark.parametrize("case", list(SYNC_FAULTS))
async def test_sync_fault(mock_gateway, gateway, client_factory, record_evidence, case):
    mock_gateway.set_fault(SYNC_FAULTS[case][0])
    evidence = await run_account_sync(gateway.endpoint, client_factory("raw"), 311, timeout=T_FIRST_OK,
                                      expect_positions=True, transcript=gateway.transcript)
    record_evidence(evidence)
    assert evidence.ok, f"{evidence.summary_line()} checks={evidence.checks}"


@pytest.mark.parametrize("case", list(ZOMBIE_FAULTS))
async def test_zombie_fault(mock_gateway, gateway, client_factory, record_evidence, case):
    fault, rotate_ids, settle, _ = ZOMBIE_FAULTS[case]
    mock_gateway.set_fault(fault)
    # Stop at the first failed run, as the version matrix does: the runs after it only sit out the same
    # connect timeout again (3 s a case), and the cause is judged from the runs up to the first failure
    # (CLOSE_WAIT grew / stayed at baseline, the phase it failed at), so the category is the same.
    evidence = await run_zombie(gateway.endpoint, "raw", lambda: client_factory("raw"), runs=4, client_id=321,
                                rotate_ids=rotate_ids, timeout=T_FIRST_OK, settle_timeout=settle,
                                stop_at_first_failure=True)
    record_evidence(evidence)
    assert evidence.ok, evidence.summary_line()


async def test_gateway_down(gateway, client_factory, record_evidence):
    """A port nothing listens on: what a Gateway that is down (or restarting) looks like."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the connect: refused
    endpoint = Endpoint(kind=gateway.endpoint.kind, host="127.0.0.1", port=port, label=f"127.0.0.1:{port}",
                        build=gateway.endpoint.build)
    evidence = await run_handshake(endpoint, client_factory("raw"), 331, timeout=T)
    record_evidence(evidence)
    assert evidence.ok, evidence.summary_line()


async def _port_accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 0.5)
    except (ConnectionError, OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _wait_port(port: int, accepting: bool, within: float) -> None:
    """Bounded poll: whether a listener exists is kernel state, no event tells it."""
    deadline = time.monotonic() + within
    while await _port_accepts(port) != accepting:
        assert time.monotonic() < deadline, f"port {port} never {'accepted' if accepting else 'refused'}"
        await asyncio.sleep(0.02)  # kernel state: nothing to await


async def test_restart_window(mock_gateway, gateway, client_factory, record_evidence):
    """The daily restart (fault restart-at): a connect while the port is down."""
    port = gateway.endpoint.port
    mock_gateway.set_fault("restart-at=0,1.5")
    try:
        await _wait_port(port, accepting=False, within=3)
        evidence = await run_handshake(gateway.endpoint, client_factory("raw"), 341, timeout=T)
        record_evidence(evidence)
    finally:
        await _wait_port(port, accepting=True, within=5)  # never leave the restart half done
    assert evidence.ok, evidence.summary_line()


async def test_harness_error(gateway, client_factory):
    """The harness misused (an unknown mode): broken, not a Gateway failure."""
    await run_zombie(gateway.endpoint, "raw", lambda: client_factory("raw"), runs=1, mode="no-such-mode")
