"""The wedged API (fault api-wedge) and the detector that names it.

Public reports show the CLOSE_WAIT pile-up as the result of the Gateway's
API thread wedging (gnzsnz/ib-gateway-docker#336 on 10.41.1d,
erdewit/ib_insync#386, nautechsystems/nautilus_trader#4796 on 10.41.1c):
the listener stops accept()ing (its Recv-Q grows) or accepts and never
reads. Both signatures are reproduced here, read back from the kernel's
socket table by harness.scenarios.listener, and named by doctor and the
zombie scenario as the wedge, not as client churn; churn is named only when
CLOSE_WAIT grows with the client's own disconnects while the API answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import pytest

from harness.clients.base import HandshakeError
from harness.clients.raw import RawClient
from harness.mock.faults import FaultError, parse_fault
from harness.mock.gateway import MockGateway
from harness.mock.profiles import get_profile
from harness.scenarios.doctor import (
    CAUSE_WEDGE,
    CAUSE_ZOMBIE,
    CAUSE_ZOMBIES_PRESENT,
    FAIL,
    OK,
    RUNG_CLOSE_WAIT,
    RUNG_VERSION,
    run_doctor,
)
from harness.scenarios.listener import port_queues
from harness.scenarios.zombie import CAUSE_WEDGE as ZOMBIE_CAUSE_WEDGE
from harness.scenarios.zombie import CAUSE_ZOMBIES, run_zombie
from harness.targets.base import Endpoint

HOST = "127.0.0.1"
QUICK = 1.0
READY = 5.0


async def _session(gw: MockGateway, client_id: int) -> None:
    """One API session that ends cleanly, counted by the mock before return."""
    client = RawClient(await_account_value=False)
    await client.connect(HOST, gw.port, client_id, timeout=READY)
    await client.disconnect()
    assert await gw.wait_client_id_free(client_id, timeout=5.0)


async def _unanswered(gw: MockGateway, client_id: int) -> HandshakeError:
    client = RawClient(await_account_value=False)
    with pytest.raises(HandshakeError) as info:
        await client.connect(HOST, gw.port, client_id, timeout=QUICK)
    return info.value


@pytest.mark.parametrize("text, value", [("api-wedge=no-accept", ("no-accept", 0)),
                                         ("api-wedge=no-read,2", ("no-read", 2)),
                                         ("api-wedge=no-read, 3", ("no-read", 3))])
def test_parse(text: str, value: tuple[str, int]) -> None:
    assert parse_fault(text) == ("api-wedge", value)


@pytest.mark.parametrize("text, message", [("api-wedge", "no mode"), ("api-wedge=stuck", "'stuck' is not one of"),
                                           ("api-wedge=no-read,-1", "below the minimum"),
                                           ("api-wedge=no-read,x", "not a whole number")])
def test_parse_bad(text: str, message: str) -> None:
    with pytest.raises(FaultError, match=message):
        parse_fault(text)


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "asyncio":
        return asyncio.new_event_loop
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (the optional [fast] extra)")
    return cast("Callable[[], asyncio.AbstractEventLoop]", uvloop.new_event_loop)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_no_accept_keeps_listening_while_the_accept_queue_grows(loop: str) -> None:
    """On asyncio's loop and on uvloop (IBGW_MOCK_LOOP=uvloop): once the listener's own
    descriptor is closed, neither loop has anything left to accept() on."""
    with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
        runner.run(_no_accept_keeps_listening())


async def _no_accept_keeps_listening() -> None:
    async with MockGateway(HOST, 0, faults=["api-wedge=no-accept,1"]) as gw:
        await _session(gw, 31)  # answered; its end wedges the API
        assert gw.wedged == "no-accept"
        for client_id in (32, 33, 34):
            error = await _unanswered(gw, client_id)
            assert error.phase == "server_version"  # TCP connected (kernel backlog), then silence
        queues = await asyncio.to_thread(port_queues, gw.port)
        assert queues.listening and queues.accept_backlog == 3, queues.to_dict()
        assert queues.wedged and "never accept()ed" in queues.signature
        await gw.restart(0)  # only a restart clears it
        assert gw.wedged is None
        await _session(gw, 35)
        assert (await asyncio.to_thread(port_queues, gw.port)).accept_backlog == 0


async def test_no_read_accepts_and_never_reads_and_clean_disconnects_leave_close_wait() -> None:
    async with MockGateway(HOST, 0, faults=["api-wedge=no-read,1"]) as gw:
        holder = RawClient(await_account_value=False)
        await holder.connect(HOST, gw.port, 40, timeout=READY)  # connected when the API wedges
        await _session(gw, 41)
        assert gw.wedged == "no-read"
        await _unanswered(gw, 42)
        await holder.disconnect()  # a clean disconnect, never seen by the wedged API
        queues = await asyncio.to_thread(port_queues, gw.port)
        assert queues.accept_backlog == 0
        states = sorted(s.state for s in queues.unread)
        assert states == ["CLOSE_WAIT", "CLOSE_WAIT"], queues.to_dict()  # the new client's and the holder's FIN
        assert gw.state()["unread_sockets"] >= 1


async def test_a_healthy_gateway_shows_no_stuck_queue() -> None:
    async with MockGateway(HOST, 0) as gw:
        await _session(gw, 50)
        queues = await asyncio.to_thread(port_queues, gw.port)
        assert queues.visible and queues.listening and not queues.wedged, queues.to_dict()


@pytest.mark.parametrize("mode", ["no-accept", "no-read"])
async def test_doctor_names_the_wedge_not_churn(mode: str) -> None:
    async with MockGateway(HOST, 0, faults=[f"api-wedge={mode}"]) as gw:
        result = await run_doctor(HOST, gw.port, timeout=QUICK)
    assert result.diagnosis[0] == CAUSE_WEDGE == CAUSE_ZOMBIE, result.diagnosis
    assert "client churn is not shown to be the cause" in result.diagnosis[0]
    assert not any(cause.startswith(CAUSE_ZOMBIES_PRESENT) for cause in result.diagnosis)
    version = result.rung(RUNG_VERSION)
    assert version.verdict == FAIL and version.evidence["listener_queues"]["wedged"] is True
    assert "IBC RESTART" in version.remediation
    assert not result.healthy


async def test_doctor_names_churn_when_close_wait_grows_while_the_api_answers() -> None:
    async with MockGateway(HOST, 0, faults=["close-wait-leak=10"]) as gw:
        for client_id in (61, 62):
            await _session(gw, client_id)  # each clean disconnect leaves one CLOSE_WAIT
        result = await run_doctor(HOST, gw.port, timeout=READY)
    assert result.rung(RUNG_VERSION).verdict == OK  # the API still answers
    assert result.rung(RUNG_CLOSE_WAIT).evidence["close_wait"] == 2
    assert CAUSE_WEDGE not in result.diagnosis
    assert any(cause.startswith(CAUSE_ZOMBIES_PRESENT) for cause in result.diagnosis), result.diagnosis
    assert "stop the churn" in result.rung(RUNG_CLOSE_WAIT).remediation


async def test_zombie_scenario_names_the_wedge_on_the_10_41_fixture() -> None:
    """The 10.41 profile's regression fixture follows gnzsnz/ib-gateway-docker#336."""
    profile = get_profile("10.41")
    assert profile.default_faults == ("api-wedge=no-read,2",)
    assert "gnzsnz/ib-gateway-docker#336" in profile.regression_source
    async with MockGateway(HOST, 0, profile=profile) as gw:
        for client_id in (71, 72):
            await _session(gw, client_id)
        evidence = await run_zombie(Endpoint("mock", HOST, gw.port, "mock:test"), "raw",
                                    lambda: RawClient(await_account_value=False), runs=3, client_id=73,
                                    timeout=QUICK, settle_timeout=0.5, stop_at_first_failure=True)
    assert not evidence.ok
    assert evidence.cause.startswith(ZOMBIE_CAUSE_WEDGE), evidence.cause
    assert "client churn is not shown to be the cause" in evidence.cause
    assert "never read" in evidence.details["wedge"]


async def test_zombie_scenario_still_names_churn_for_a_leak_while_the_api_answers() -> None:
    async with MockGateway(HOST, 0, faults=["close-wait-leak=2"]) as gw:
        evidence = await run_zombie(Endpoint("mock", HOST, gw.port, "mock:test"), "raw",
                                    lambda: RawClient(await_account_value=False), runs=3, client_id=81,
                                    timeout=QUICK, settle_timeout=0.5)
    assert not evidence.ok
    assert evidence.cause.startswith(CAUSE_ZOMBIES), evidence.cause


def test_the_proc_table_reader_decodes_listener_backlog_and_unread_bytes(tmp_path, monkeypatch) -> None:
    """/proc/net/tcp6 as the kernel prints it: a dual-stack listener on 4002 (0x0FA2) with 37 connections
    never accept()ed (nautechsystems/nautilus_trader#4796's Recv-Q), one IPv4-mapped CLOSE_WAIT holding
    18 unread bytes, one ESTABLISHED socket fully read, and another port's listener."""
    import harness.scenarios.listener as listener

    header = "  sl  local_address                         remote_address                        st tx_queue rx_queue\n"
    rows = [
        "0: 00000000000000000000000000000000:0FA2 00000000000000000000000000000000:0000 0A 00000032:00000025",
        "1: 0000000000000000FFFF00000100007F:0FA2 0000000000000000FFFF00000100007F:C350 08 00000000:00000012",
        "2: 0000000000000000FFFF00000100007F:0FA2 0000000000000000FFFF00000100007F:C351 01 00000000:00000000",
        "3: 00000000000000000000000000000000:0FA3 00000000000000000000000000000000:0000 0A 00000032:00000009",
    ]
    table = tmp_path / "tcp6"
    table.write_text(header + "\n".join(f"   {r} 00:00000000 00000000 0 0 1 1" for r in rows) + "\n")
    monkeypatch.setattr(listener, "port_rows", lambda ports: None)  # as where netlink is unavailable: /proc text
    monkeypatch.setattr(listener, "PROC_TABLES", (tmp_path / "missing", table))
    queues = listener.port_queues(4002)
    assert queues.visible and queues.listening and queues.accept_backlog == 37
    assert [(s.remote, s.state, s.queued) for s in queues.unread] == [("127.0.0.1:50000", "CLOSE_WAIT", 18)]
    assert queues.wedged and "37 connection(s)" in queues.signature
    monkeypatch.setattr(listener, "PROC_TABLES", (tmp_path / "missing",))
    assert not listener.port_queues(4002).visible  # no table here: unknown, never "not wedged" by accident
