"""`ibgw soak` on short runs and bad input, from a shell as a user runs it.

Why these exist: a short soak against a healthy mock used to FAIL (the
default schedule put a fault so late that the run ended before the client's
reconnect could be judged, and the verdict blamed the client), and bad
options either ran a soak bound to fail or ended in a traceback. Each test
here runs the real CLI (a subprocess, or click's runner where only the exit
mapping is under test) and checks the exit status, the one-line cause and
that nothing started or was written when it should not have been.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.core.record import FAILED, Evidence
from harness.mock import MockGateway
from harness.scenarios.soak import CONFIG_PHASE, SoakConfig, run_soak
from harness.scenarios.soak_schedule import LEAD_IN, RECOVERY_MARGIN, default_schedule, parse_schedule
from harness.targets.base import Endpoint
from tests.support.background import selected_tests
from tests.support.processes import CLI, MockServe, Started, cli_env, run, run_cli

HOST = "127.0.0.1"
FAST = ("--interval", "2", "--ping-interval", "0.5", "--probe-interval", "4", "--probe-timeout", "3")


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]


# ------------------------------------------------------------------ defect 1: short soaks


def test_default_schedule_always_leaves_the_recovery_bound_after_each_fault() -> None:
    """Every default plan, for any duration, target and bound: LEAD_IN before the
    first fault, the bound plus RECOVERY_MARGIN after each; a run long enough
    for all of them drops none, and the plan says what it dropped and why."""
    for kind in ("mock", "proxy", "container"):
        for bound in (1.0, 5.0, 15.0, 60.0):
            for duration in range(1, 400, 3):
                plan = default_schedule(duration, kind, bound)
                nexts = ([s.at for s in plan.steps] + [float(duration)])[1:]
                assert all(s.at + s.seconds + bound + RECOVERY_MARGIN <= b + 1e-9
                           for s, b in zip(plan.steps, nexts, strict=True)), (kind, bound, duration, plan)
                assert all(s.at >= LEAD_IN for s in plan.steps)
                assert len(plan.steps) + len(plan.dropped) == 3
                assert bool(plan.dropped) == (duration < plan.full_duration), (kind, bound, duration, plan)
    short = default_schedule(20, "mock")
    assert short.steps == [] and short.dropped == ["restart", "connectivity-loss", "stuck-id"]
    assert "(82 s or more runs all 3)" in short.describe()


# ------------------------------------------------------------------ the three short soaks, run side by side
# Each is the real command for 15-30 s of mostly waiting (the soak's clock is wall time), so the module
# starts the ones its selected tests need together, each in its own process with its own --out, and each
# test reads its own run's result: the module waits for the longest (30 s), not for the sum (65 s).
# The durations are the commands the defects were reported with, unchanged.
SHORT_SOAKS: dict[str, tuple[str, ...]] = {
    "test_a_20_s_soak_against_the_mock_passes_and_says_what_it_dropped": ("--duration", "20"),
    "test_a_short_soak_keeps_the_faults_that_fit_and_recovers_from_them": (
        "--duration", "30", "--recovery-bound", "5", "--backoff-cap", "1"),
    "test_a_15_s_soak_through_the_proxy_passes": ("--gateway", "{serve}", "--duration", "15"),
}
SOAK_TIMEOUT = 80.0  # each run's hard cap from its start (the longest needs ~35 s on a quiet machine)


@pytest.fixture(scope="module", autouse=True)
def short_soaks(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Started]]:
    """The short soaks this run selected, started side by side when the module starts; killed (if still
    running) at its end."""
    selected = selected_tests(request)
    base = tmp_path_factory.mktemp("short-soaks")
    serve: MockServe | None = None
    runs: dict[str, Started] = {}
    try:
        for name, args in SHORT_SOAKS.items():
            if name not in selected:
                continue
            if "{serve}" in args and serve is None:
                serve = MockServe(base / "serve.log")
            args = tuple(a.format(serve=f"{HOST}:{serve.port}") if serve is not None else a for a in args)
            runs[name] = Started([*CLI, "soak", *args, "--out", str(base / name), *FAST], env=cli_env(),
                                 timeout=SOAK_TIMEOUT, merge_stderr=False)
        yield runs
    finally:
        for started in runs.values():
            started.kill()
        if serve is not None:
            serve.close()


def _short_soak(runs: dict[str, Started], request: pytest.FixtureRequest) -> subprocess.CompletedProcess[str]:
    return runs[request.node.name].result()


def test_an_explicit_schedule_without_room_to_recover_is_refused_up_front(tmp_path: Path) -> None:
    proc = run_cli("soak", "--duration", "20", "--schedule", "stuck-id@15:1", "--out", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    _no_traceback(proc)
    assert "soak fault stuck-id@15:1 ends 4 s before the 20 s soak does" in proc.stderr
    assert "use --duration 31 or more" in proc.stderr
    assert not list(tmp_path.iterdir()), "refused, yet something was written"
    # The shortest duration named follows the bound.
    proc = run_cli("soak", "--duration", "18", "--schedule", "stuck-id@15:1", "--recovery-bound", "3",
                   "--out", str(tmp_path))
    assert proc.returncode == 2 and "use --duration 19 or more" in proc.stderr, proc.stderr


class _RestartOutlastingTheSoak:
    """The mock, except that its restart keeps the port refused far longer
    than the schedule said (as a container restart may): the fault is still
    running when the soak ends."""

    def __init__(self, gateway: MockGateway) -> None:
        self._gateway = gateway

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gateway, name)

    async def restart(self, down: float = 0.0) -> None:
        await self._gateway.restart(down + 60.0)


@pytest.mark.timeout(60)
async def test_a_fault_that_outlasts_the_run_is_a_configuration_failure_not_never_recovered(tmp_path: Path) -> None:
    async with MockGateway(HOST, 0) as gw:
        # The restart at 2 s (planned 0.5 s) ends 2.5 s in: the 5 s bound fits in 7.5 s.
        config = SoakConfig(duration=7.5, clients=("raw",), ping_interval=0.5, ping_timeout=1.0, probe_interval=1.0,
                            probe_timeout=1.0, interval=2.0, connect_timeout=1.0, backoff_cap=0.5,
                            recovery_bound=5.0, schedule=parse_schedule("restart@2:0.5"))
        evidence = await run_soak(config, Endpoint("mock", HOST, gw.port, "mock:default"), tmp_path,
                                  mock=_RestartOutlastingTheSoak(gw))
    assert not evidence.ok
    assert evidence.failed_phase == CONFIG_PHASE, (evidence.cause, evidence.checks)
    assert [k for k, v in evidence.checks.items() if not v] == ["room_to_recover"]
    assert "never recovered" not in (evidence.cause or "")
    assert "raw: disconnected at" in (evidence.cause or "")
    assert "after the restart fault, before the recovery bound of 5 s" in (evidence.cause or "")
    assert "too short to judge that recovery: run it for" in (evidence.hint or "")


def test_a_run_too_short_to_judge_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The exit status of a run whose only failure is its configuration: 2
    (bad input), not 1 (the Gateway or client failed)."""
    from harness.cli import soak as soak_cli

    async def too_short(*_: Any, **__: Any) -> Evidence:
        return Evidence(scenario="soak", target={}, client={"name": "raw"}, outcome=FAILED,
                        failed_phase=CONFIG_PHASE, cause="raw: the run ended 1.0 s after the restart fault",
                        hint="the soak was too short to judge that recovery")

    monkeypatch.setattr(soak_cli, "run_soak_against", too_short)
    monkeypatch.setattr(soak_cli, "write_outputs", lambda evidence, out_dir: [])
    # The command configures logging as a process would (ib_async silenced, a
    # root handler); in-process, that must not outlive this test.
    ib_async_logger, root = logging.getLogger("ib_async"), logging.getLogger()
    level, handlers = ib_async_logger.level, list(root.handlers)
    try:
        result = CliRunner().invoke(soak_cli.soak, ["--duration", "5", "--out", str(tmp_path)])
    finally:
        ib_async_logger.setLevel(level)  # setLevel, not assignment: it clears the loggers' level caches
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
    assert result.exit_code == 2, result.output
    assert "the run ended 1.0 s after the restart fault" in result.output


# ------------------------------------------------------------------ defects 2 and 3: bad input


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--backoff-cap", "0", "x>=0.25"),
    ("--connect-timeout", "-1", "x>=0.5"),
    ("--gap-margin", "-5", "x>0"),
    ("--recovery-bound", "-1", "x>0"),
    ("--rss-growth-mb", "-1", "x>=0"),
    ("--probe-timeout", "0", "x>=0.5"),
    ("--duration", "0", "x>=1"),
])
def test_nonsense_numbers_are_usage_errors(option: str, value: str, says: str, tmp_path: Path) -> None:
    proc = run_cli("soak", option, value, "--duration" if option != "--duration" else "--interval",
                   "5", "--out", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    _no_traceback(proc)
    assert f"Invalid value for '{option}'" in proc.stderr and says in proc.stderr, proc.stderr
    assert not list(tmp_path.iterdir()), "a usage error, yet something was written"


def test_an_out_dir_that_cannot_be_created_is_a_usage_error(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    proc = run_cli("soak", "--duration", "5", "--out", str(afile / "sub"))
    assert proc.returncode == 2, proc.stderr
    _no_traceback(proc)
    assert "Invalid value for '--out'" in proc.stderr and f"{afile} is a file, not a directory" in proc.stderr
    assert "soak:" not in proc.stderr, "the soak started"


def test_no_docker_engine_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {**cli_env(), "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    proc = run_cli("soak", "--duration", "10", "--gateway", "docker:foo", "--out", str(tmp_path / "o"), env=env)
    assert proc.returncode == 1, proc.stderr
    _no_traceback(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no Docker engine at" in errors[0] and "use --gateway mock" in errors[0], proc.stderr


# ------------------------------------------------------------------ defect 4: the plot of a file that is no soak


def test_plotting_a_file_that_is_not_a_soak_record_fails_and_writes_nothing(tmp_path: Path) -> None:
    notrec = tmp_path / "notrec.jsonl"
    notrec.write_text('hello\n{"type": "interval"}\n[1, 2]\n')
    proc = run([sys.executable, "-m", "harness.evidence.soak_plot", str(notrec)], env=cli_env())
    assert proc.returncode == 2, proc.stderr
    _no_traceback(proc)
    lines = proc.stderr.splitlines()
    assert lines[0] == f"not a soak record: {notrec} has no soak start line", proc.stderr
    assert lines[1].startswith("hint: ") and len(lines) == 2, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notrec.jsonl"]


# ------------------------------------------------------------------ the short soaks' verdicts
# Last in the module: every test above runs while the short soaks (started with the module) do.


@pytest.mark.timeout(90)
def test_a_20_s_soak_against_the_mock_passes_and_says_what_it_dropped(
        short_soaks: dict[str, Started], request: pytest.FixtureRequest) -> None:
    """`ibgw soak --duration 20`: used to FAIL with ib_async 'never recovered'
    after a stuck id at 15 s. A healthy mock must pass."""
    proc = _short_soak(short_soaks, request)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "passed" in proc.stdout
    assert "schedule none (the default for 20 s); dropped restart, connectivity-loss, stuck-id: 20 s is too short " \
           "to leave the recovery bound (15 s)" in proc.stderr


@pytest.mark.timeout(90)
def test_a_15_s_soak_through_the_proxy_passes(short_soaks: dict[str, Started], request: pytest.FixtureRequest) -> None:
    """`ibgw soak --gateway 127.0.0.1:P --duration 15` used to FAIL after a proxy-reject at 11 s."""
    proc = _short_soak(short_soaks, request)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "dropped proxy-reset, proxy-blackhole, proxy-reject" in proc.stderr


@pytest.mark.timeout(90)
def test_a_short_soak_keeps_the_faults_that_fit_and_recovers_from_them(
        short_soaks: dict[str, Started], request: pytest.FixtureRequest) -> None:
    """30 s with a 5 s recovery bound: room for the restart and the
    connectivity loss, not for the stuck id; both kept faults recovered.
    (Its result is read after the 20 s and 15 s runs': the longest of the three.)"""
    proc = _short_soak(short_soaks, request)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "schedule restart@5.1:1.5,connectivity-loss@16.8:3 (the default for 30 s); dropped stuck-id" in proc.stderr
