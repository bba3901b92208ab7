"""The nightly reset and the auto-restart, played with their public
shapes and (time-scaled) realistic lengths.

Nightly reset (IbcAlpha/IBC#143, #251): error 1100 repeated, then
2103/2105, then 1102 carrying the farm list (or 1101: data lost,
QuantConnect/Lean PR #960), then 2107/2108 "inactive" on paper accounts;
the socket stays up. Auto-restart (manhinhang/ib-gateway-docker PR #157):
every socket dropped, the port refused for about 60-90 s. The reconnecting
client survives both and the soak's evidence shows each phase."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clients.raw import RawClient
from harness.evidence.soak_plot import read_jsonl
from harness.mock import MockGateway
from harness.mock.faults import parse_fault
from harness.scenarios.soak import SoakConfig, run_soak
from harness.scenarios.soak_schedule import DEFAULT_SECONDS, ScheduleError, parse_schedule
from harness.targets.base import Endpoint

HOST = "127.0.0.1"
SCALE = 0.05  # 75 s of auto-restart in 3.75 s, a 60 s reset in 3 s


def test_realistic_lengths_and_the_time_scale() -> None:
    assert DEFAULT_SECONDS["auto-restart"] == 75.0  # inside the reported 60-90 s
    steps = parse_schedule("nightly-reset@5,auto-restart@15,nightly-reset-lost@30:20")
    assert [(s.kind, s.seconds) for s in steps] == [("nightly-reset", 60.0), ("auto-restart", 75.0),
                                                    ("nightly-reset-lost", 20.0)]
    scaled = parse_schedule("nightly-reset@5,auto-restart@15", time_scale=SCALE)
    assert [(s.at, s.seconds) for s in scaled] == [(5, 3.0), (15, 3.75)]  # lengths scaled, start times not
    with pytest.raises(ScheduleError):
        parse_schedule("auto-restart@5", time_scale=0)


def test_nightly_reset_fault_parses() -> None:
    assert parse_fault("nightly-reset=1,6") == ("nightly-reset", (1.0, 6.0, 3, False))
    assert parse_fault("nightly-reset=0,2,5,lost") == ("nightly-reset", (0.0, 2.0, 5, True))


@pytest.mark.parametrize("lost, end_code", [(False, 1102), (True, 1101)], ids=["1102", "1101"])
async def test_a_connected_client_sees_the_reset_in_order(lost: bool, end_code: int) -> None:
    async with MockGateway(HOST, 0) as gw:
        client = RawClient(await_account_value=False)
        await client.connect(HOST, gw.port, 5, timeout=5)
        before = len(client.messages)
        phases: list[str] = []
        await gw.nightly_reset(0.4, repeats=3, data_lost=lost, phase=phases.append)
        await client.ping(5)  # every notice sent before the reply has been read
        codes = [msg.code for msg in client.messages[before:]]
        await client.disconnect()
    assert codes == [1100, 1100, 1100, 2103, 2105, end_code, 2108, 2107], codes
    farms = next(msg.message for msg in client.messages if msg.code == end_code)
    if not lost:
        assert "All data farms are connected: usfarm; ushmds; secdefnj" in farms
    assert len(phases) == 6 and phases[0].startswith("1100") and phases[-1].startswith("2107/2108")


@pytest.mark.timeout(120)
async def test_the_reconnecting_client_survives_a_nightly_reset_and_an_auto_restart(tmp_path: Path) -> None:
    async with MockGateway(HOST, 0) as gw:
        # The reset (3 s) ends at 6 s; 2 s later (its 1102 is in, even on a loaded machine) the restart
        # (3.75 s) ends at 11.75 s; the run goes on for the 8 s recovery bound after it (it was 30 s).
        schedule = parse_schedule("nightly-reset@3,auto-restart@8", time_scale=SCALE)
        config = SoakConfig(duration=20, clients=("raw", "ib_async"), ping_interval=0.5, ping_timeout=1.0,
                            probe_interval=4.0, probe_timeout=3.0, interval=5.0, connect_timeout=4.0,
                            backoff_cap=1.0, gap_margin=8.0, recovery_bound=8.0, schedule=schedule)
        evidence = await run_soak(config, Endpoint("mock", HOST, gw.port, "mock:default", profile="default"),
                                  tmp_path, mock=gw)
    assert evidence.ok, f"{evidence.cause} | checks {evidence.checks}"
    for client in ("raw", "ib_async"):
        outages = evidence.details["outages"][client]
        data = [o for o in outages if o["kind"] == "data"]
        conn = [o for o in outages if o["kind"] == "connection"]
        assert len(data) == 1 and data[0]["repeats"] == 2 and data[0]["ended_by"] == 1102, data  # one outage
        assert len(conn) == 1 and conn[0]["duration_s"] >= 3.75, conn  # the port was refused the whole time
    faults = {f["kind"]: f for f in evidence.details["faults"]}
    reset_phases = [p["phase"] for p in faults["nightly-reset"]["phases"]]
    assert [p.split(" ")[0] for p in reset_phases] == ["1100", "1100", "1100", "2103/2105", "1102", "2107/2108"]
    restart_phases = [p["phase"] for p in faults["auto-restart"]["phases"]]
    assert restart_phases[0].startswith("every connection dropped") and restart_phases[-1] == "port accepting again"
    written = [r["detail"] for r in read_jsonl(tmp_path / "soak.jsonl") if r.get("kind") == "fault_phase"]
    assert written == reset_phases + restart_phases  # the JSON Lines show each phase as it happened
