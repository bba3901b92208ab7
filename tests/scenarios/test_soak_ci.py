"""The soak in CI: about a minute against the mock with a daily restart, a
connectivity loss and a stuck client id in its schedule. Not marked `soak`:
these run in every `make test` and prove the soak's own machinery (the
reconnecting client, the verdict, the JSON Lines that survive a kill)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.core.record import Evidence
from harness.evidence.soak_plot import plot_timeline, read_jsonl
from harness.mock import MockGateway
from harness.scenarios.soak import SoakConfig, raise_if_cancelled, run_soak
from harness.scenarios.soak_schedule import ScheduleError, default_schedule, parse_schedule
from harness.targets.base import Endpoint
from tests.support import ROOT
from tests.support.background import InThread, selected_tests
from tests.support.processes import CLI, Spawned, Started, cli_env, pytest_cmd

HOST = "127.0.0.1"
# The CI soak plays realistic fault lengths (a 60 s restart, an 80 s connectivity loss, a 40 s
# stuck id) through the soak's time scale: 3, 4 and 2 s, so it proves recovery in under half a minute.
TIME_SCALE = 0.05
RESTART_DOWN = 60 * TIME_SCALE
LOSS_FOR = 80 * TIME_SCALE


def ci_config(duration: float, schedule: str, **overrides: object) -> SoakConfig:
    """Short intervals so a minute holds every fault and its recovery."""
    # Margins leave room for a loaded 2-core CI machine; the evidence, not the bound, carries the timings.
    options: dict[str, object] = {"duration": duration, "clients": ("raw", "ib_async"), "ping_interval": 0.5,
                                  "ping_timeout": 1.0, "probe_interval": 4.0, "probe_timeout": 3.0,
                                  "interval": 5.0, "connect_timeout": 4.0, "backoff_cap": 1.0, "gap_margin": 8.0,
                                  "recovery_bound": 8.0, "time_scale": TIME_SCALE}
    options.update(overrides)
    options["schedule"] = parse_schedule(schedule, float(options["time_scale"]))  # type: ignore[arg-type]
    return SoakConfig(**options)  # type: ignore[arg-type]


def endpoint_of(gw: MockGateway) -> Endpoint:
    return Endpoint("mock", HOST, gw.port, "mock:default", profile="default")


def test_schedule_text_and_defaults() -> None:
    steps = parse_schedule("connectivity-loss@20:4,restart@8:3")
    assert [(s.kind, s.at, s.seconds) for s in steps] == [("restart", 8, 3), ("connectivity-loss", 20, 4)]
    assert parse_schedule("none") == []
    hour = default_schedule(3600, "mock")
    assert [(s.kind, s.at, s.seconds) for s in hour.steps] == [("restart", 900, 60), ("connectivity-loss", 1800, 30),
                                                               ("stuck-id", 2700, 20)]
    assert not hour.dropped
    assert all(s.kind.startswith("proxy-") for s in default_schedule(3600, "external").steps)
    assert default_schedule(3600, "container").steps[0].kind == "container-restart"
    for bad in ("reboot@5", "restart", "restart@x", "restart@-1"):
        with pytest.raises(ScheduleError):
            parse_schedule(bad)


async def test_soak_refuses_mock_faults_without_the_mock(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="needs the mock"):
        await run_soak(ci_config(10, "restart@2:1"), Endpoint("external", HOST, 1, "x"), tmp_path)
    with pytest.raises(ScheduleError, match="needs a container"):
        await run_soak(ci_config(10, "container-restart@2"), Endpoint("external", HOST, 1, "x"), tmp_path)
    with pytest.raises(ScheduleError, match="needs the fault proxy"):
        await run_soak(ci_config(10, "proxy-reset@2"), Endpoint("external", HOST, 1, "x"), tmp_path)


async def _in_process_soak(config: SoakConfig, out_dir: Path) -> tuple[SoakConfig, Evidence]:
    async with MockGateway(HOST, 0) as gw:
        return config, await run_soak(config, endpoint_of(gw), out_dir, mock=gw)


def _ci_soak(out_dir: Path) -> InThread[tuple[SoakConfig, Evidence]]:
    # Each fault starts after the previous one's recovery bound has run out, the last ends a
    # recovery bound before the soak does: 28 s (it was 45 s of fixed waits).
    config = ci_config(28, "restart@3:60,connectivity-loss@10:80,stuck-id@18:40", interval=4.0)
    return InThread(functools.partial(_in_process_soak, config, out_dir), timeout=150, name="ci-soak")


def _no_reconnect_soak(out_dir: Path) -> InThread[tuple[SoakConfig, Evidence]]:
    # 1 s down at the time scale; the bounds shortened with the run, so the 6 s of silence after the
    # restart exceed the ping-gap bound (1 s outage + 3 s) and the recovery bound fits in 11 s. The
    # restart comes after the default plans' lead-in (5 s): at 2 s a loaded machine had not yet
    # connected both clients, the restart came before their first answered ping, and no gap was measured.
    config = ci_config(11, "restart@5:20", reconnect=False, probe_interval=2.0, gap_margin=3.0, recovery_bound=5.0)
    return InThread(functools.partial(_in_process_soak, config, out_dir), timeout=50, name="no-reconnect-soak")


TEAM_CLIENT = "examples.isolated_worker.adapter:factory"


def _teams_client_soak(out_dir: Path) -> Started:
    # A 20 s restart played at the time scale (1 s down, ending at 6 s); the run goes on for the 7 s
    # recovery bound after it (a worker process per connection reconnects slowly on a loaded machine).
    # It starts after the default plans' lead-in (5 s): at 2 s a loaded machine had not yet connected
    # the worker, so the restart passed before its connection and there was nothing to recover.
    return Started([*CLI, "soak", "--client", TEAM_CLIENT, "--duration", "13", "--schedule", "restart@5:20",
                    "--time-scale", str(TIME_SCALE), "--interval", "1",
                    "--ping-interval", "0.2", "--probe-interval", "1", "--probe-timeout", "2", "--connect-timeout", "2",
                    "--backoff-cap", "0.5", "--gap-margin", "7", "--recovery-bound", "7", "--out", str(out_dir)],
                   env=cli_env(), timeout=90, merge_stderr=False)


def _suite_soak(out_dir: Path) -> Started:
    env = {**os.environ, "IBGW_SOAK_DURATION": "22", "IBGW_SOAK_SCHEDULE": "auto-restart@2",
           "IBGW_SOAK_TIME_SCALE": str(TIME_SCALE), "IBGW_SOAK_CLIENTS": "raw"}
    for name in ("IBGW_GATEWAY", "IBGW_RUN_OWNER", "IBGW_RUN_DIR", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    out_dir.mkdir(parents=True, exist_ok=True)
    suite = ROOT / "suites" / "test_soak.py"
    return Started(pytest_cmd(str(suite), "-m", "soak", "-q", "--gateway", "mock", evidence_dir=out_dir / "evidence"),
                   cwd=out_dir, env=env, timeout=140, merge_stderr=False)


# The module's soaks (10-30 s of wall clock each, mostly waiting) start together when the module does,
# each in its own thread or process with its own output directory; each test judges its own run.
SOAKS: dict[str, Callable[[Path], InThread[tuple[SoakConfig, Evidence]] | Started]] = {
    "test_ci_soak_recovers_from_restart_connectivity_loss_and_stuck_id": _ci_soak,
    "test_ci_soak_without_the_reconnecting_client_fails_for_the_right_cause": _no_reconnect_soak,
    "test_soak_command_runs_a_teams_own_client_through_a_restart": _teams_client_soak,
    "test_the_soak_suite_plays_a_realistic_auto_restart_at_a_time_scale": _suite_soak,
}


@pytest.fixture(scope="module", autouse=True)
def soak_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The soaks this run selected, started side by side at the module's start; stopped at its end."""
    base = tmp_path_factory.mktemp("soak-runs")
    runs: dict[str, Any] = {}
    try:
        for name in selected_tests(request):
            if name in SOAKS:
                runs[name] = (SOAKS[name](base / name), base / name)
        yield runs
    finally:
        for started, _ in runs.values():
            if isinstance(started, InThread):
                started.close()
            else:
                started.kill()


def _own_run(runs: dict[str, Any], request: pytest.FixtureRequest) -> Any:
    return runs[request.node.name]


@pytest.mark.timeout(100)  # it runs beside the module's soaks: on a loaded machine its child starts slowly
async def test_soak_killed_by_sigterm_leaves_readable_json_lines(tmp_path: Path) -> None:
    soak = Spawned([sys.executable, "-m", "harness.cli", "soak", "--duration", "60", "--client", "raw",
                    "--interval", "1", "--ping-interval", "0.2", "--probe-interval", "2",
                    "--schedule", "restart@1.5:0.5", "--out", str(tmp_path)],
                   other=tmp_path / "stderr.txt", env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        # Until the file shows 4 intervals and the recovery from the restart (on a loaded machine
        # the recovery may come after the 4th interval): the events the test needs, not a fixed wait.
        deadline = time.monotonic() + 75
        intervals, recovered = 0, False
        while not (intervals >= 4 and recovered) and time.monotonic() < deadline and soak.proc.poll() is None:
            await asyncio.sleep(0.2)  # watching another process's file: there is no event to await
            files = list(tmp_path.glob("*/soak.jsonl"))
            lines = files[0].read_text().splitlines() if files else []
            intervals = sum('"type": "interval"' in line for line in lines)
            recovered = any('"kind": "recovered"' in line for line in lines)
        assert intervals >= 4 and recovered, (tmp_path / "stderr.txt").read_text()[-2000:]
        returncode = await soak.astop(signal.SIGTERM, 20)
    finally:
        await soak.astop()  # a no-op once it has exited; kills it when an assertion above failed
    assert returncode == 128 + signal.SIGTERM
    path = next(tmp_path.glob("*/soak.jsonl"))
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses: nothing half-written
    assert records[0]["type"] == "start"
    assert sum(r["type"] == "interval" for r in records) >= 4
    assert ("raw", "recovered") in {(r.get("client"), r["kind"]) for r in records if r["type"] == "event"}
    assert records[-1]["type"] == "summary" and records[-1]["aborted"].startswith("cancelled")
    assert (path.parent / "timeline.png").is_file()


@pytest.mark.timeout(180)
def test_ci_soak_recovers_from_restart_connectivity_loss_and_stuck_id(soak_runs: dict[str, Any],
                                                                       request: pytest.FixtureRequest) -> None:
    started, tmp_path = _own_run(soak_runs, request)
    config, evidence = started.result()
    assert evidence.ok, f"{evidence.cause} | checks {evidence.checks}"
    outages = evidence.details["outages"]
    for client in ("raw", "ib_async"):
        conn = [o for o in outages[client] if o["kind"] == "connection"]
        data = [o for o in outages[client] if o["kind"] == "data"]
        # The restart kept the port refused for RESTART_DOWN s: that outage cannot be shorter.
        assert conn and conn[0]["duration_s"] >= RESTART_DOWN, conn
        assert "connection refused" in " ".join(conn[0]["failures"])
        # The stuck id: the same client id came back only after 326s.
        assert len(conn) == 2 and "326" in " ".join(conn[1]["failures"]), conn
        # 1100 ... 1102: one outage of data on a live socket, as long as the loss (less at most a
        # ping interval, the first missed ping), within the verdict's own margin above it.
        assert len(data) == 1, data
        assert LOSS_FOR - config.ping_interval <= data[0]["duration_s"] <= LOSS_FOR + config.gap_margin, data
    recoveries = evidence.details["recoveries"]
    assert {r["fault"] for r in recoveries} == {"restart", "stuck-id"}
    assert all(r["after_fault_end_s"] <= config.recovery_bound for r in recoveries)
    # A fresh probe every probe_interval: at least half of those the run had room for (a loaded machine is slower).
    assert evidence.measurements["probes_count"] >= config.duration / config.probe_interval / 2
    assert evidence.checks["fresh_probes"]

    records = read_jsonl(tmp_path / "soak.jsonl")
    kinds = [r["type"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "summary"
    assert kinds.count("interval") == round(config.duration / config.interval)  # 7 records of 4 s
    events = [(r.get("client"), r["kind"]) for r in records if r["type"] == "event"]
    for client in ("raw", "ib_async"):
        for kind in ("disconnected", "recovered", "data_lost", "data_restored"):
            assert (client, kind) in events, (client, kind)
    recovered = [r for r in records if r["type"] == "event" and r["kind"] == "recovered"]
    assert all(r["duration_s"] > 0 for r in recovered)
    assert plot_timeline(tmp_path / "soak.jsonl", tmp_path / "timeline.png").stat().st_size > 10_000


@pytest.mark.timeout(90)
def test_ci_soak_without_the_reconnecting_client_fails_for_the_right_cause(soak_runs: dict[str, Any],
                                                                            request: pytest.FixtureRequest) -> None:
    started, tmp_path = _own_run(soak_runs, request)
    _, evidence = started.result()
    assert not evidence.ok
    assert evidence.checks["recovered"] is False and evidence.checks["ping_gap"] is False
    assert evidence.checks["fresh_probes"]  # the Gateway came back; only the persistent clients did not
    for client in ("raw", "ib_async"):
        assert f"{client}: disconnected at" in evidence.cause
    assert "never recovered (the reconnecting client is switched off)" in evidence.cause
    assert "reconnect loop" in (evidence.hint or "")
    summary = read_jsonl(tmp_path / "soak.jsonl")[-1]
    assert summary["type"] == "summary" and summary["outcome"] == "failed"


async def test_a_cancellation_swallowed_by_wait_for_still_stops_a_soak_loop() -> None:
    """The cause of a soak that ignored SIGTERM under load: on Python 3.11 a wait_for whose reply and
    cancellation land in the same loop iteration returns the reply (bpo-42130); the soak's loops check
    raise_if_cancelled() after each round trip, so they stop all the same."""
    reply: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def one_round_trip() -> str:
        await asyncio.wait_for(reply, 5)  # a ping: wait_for on the reply
        raise_if_cancelled()
        return "ran on after the cancellation"

    task = asyncio.create_task(one_round_trip())
    await asyncio.sleep(0)  # the task now waits on the reply
    reply.set_result(1)  # the reply and the cancellation in the same iteration
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_backoff_grows_to_its_cap_and_rejects_nonsense() -> None:
    from harness.clients.reconnecting import Backoff

    backoff = Backoff(initial=0.25, factor=2.0, cap=5.0, jitter=0.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5, 6, 50)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    jittered = Backoff(cap=5.0, jitter=0.1, seed=1)
    assert all(4.5 <= jittered.delay(40) <= 5.5 for _ in range(20))
    with pytest.raises(ValueError):
        Backoff(initial=0)


@pytest.mark.timeout(120)
def test_soak_command_runs_a_teams_own_client_through_a_restart(soak_runs: dict[str, Any],
                                                                request: pytest.FixtureRequest) -> None:
    """`ibgw soak --client module:factory`: the example isolated-worker adapter
    (a worker process per connection) is kept alive across a mock restart."""
    started, tmp_path = _own_run(soak_runs, request)
    spec = TEAM_CLIENT
    proc = started.result()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"soak via {spec}: passed" in proc.stdout
    evidence = json.loads(next(tmp_path.glob("*/evidence.json")).read_text())
    assert evidence["outcome"] == "passed"
    assert any(e.get("kind") == "recovered" and e.get("client") == spec
               for e in read_jsonl(next(tmp_path.glob("*/soak.jsonl")))), "no recovery recorded for the custom client"


def test_soak_command_refuses_an_unloadable_client_in_one_line() -> None:
    from tests.support.processes import run_cli

    proc = run_cli("soak", "--client", "no_such_team_module:factory", "--duration", "5")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot import 'no_such_team_module'" in proc.stderr and "built-in clients: raw" in proc.stderr


@pytest.mark.timeout(150)
def test_the_soak_suite_plays_a_realistic_auto_restart_at_a_time_scale(soak_runs: dict[str, Any],
                                                                       request: pytest.FixtureRequest) -> None:
    """`make soak`'s suite with IBGW_SOAK_TIME_SCALE: the auto-restart at its
    realistic 75 s, played at 0.05 (3.75 s of refused port), is survived
    and the evidence records the scaled length; the run takes seconds."""
    started, tmp_path = _own_run(soak_runs, request)
    proc = started.result()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    evidence = json.loads(next(tmp_path.glob("reports/soak/*/evidence.json")).read_text())
    assert evidence["outcome"] == "passed"
    faults = {f["kind"]: f for f in evidence["details"]["faults"]}
    assert faults["auto-restart"]["seconds"] == pytest.approx(75 * TIME_SCALE)
