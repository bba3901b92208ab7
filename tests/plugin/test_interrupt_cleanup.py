"""Clean-up that holds whatever ends a run: SIGINT, SIGTERM, SIGKILL.

Each case starts a real pytest run in a subprocess (its own session, its own
run directory and evidence directory under tmp_path, cwd tmp_path so every
relative output lands there), waits until it is in the middle of a test,
notes every process and listening port the run owns, sends the signal, and
then shows: no process of that run is left, none of its ports listens, no
temporary file is left in its run or evidence directory, and the evidence
written so far parses. After SIGKILL (no teardown can run) the orphaned
`ibgw mock serve` is shown to survive the kill, and the next run's start-up
sweep (harness/runstate.py) to stop it.

Cases: a mock-gateway test (tests/interrupt_target/run_under_signal.py)
and a soak (suites/test_soak.py, a short soak against the mock).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.support import ROOT
from tests.support.processes import Started, pytest_cmd

TARGET = ROOT / "tests" / "interrupt_target" / "run_under_signal.py"
SOAK = ROOT / "suites" / "test_soak.py"
START_DEADLINE = 90.0  # child pytest start-up (imports) plus reaching the held test
EXIT_DEADLINE = 30.0
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    tmp: Path
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBGW_RUN_", "PYTEST_"))}
    env |= {"IBGW_RUN_DIR": str(tmp / "run"), "IBGW_INTERRUPT_MARKER": str(tmp / "marker.json"), **extra}
    return env


def _start(tmp: Path, args: list[str], log_name: str, **extra_env: str) -> Child:
    log = tmp / log_name
    child = Started(pytest_cmd(*args, "-q", "-s", evidence_dir=tmp / "evidence"), cwd=tmp,
                    env=_env(tmp, **extra_env), log=log, new_session=True)
    return Child(child.proc, tmp, log)


def _wait_for(condition: object, what: str, child: Child, deadline: float = START_DEADLINE) -> None:
    """Bounded polling of another process's progress (a file it writes):
    there is no event to await across processes."""
    end = time.monotonic() + deadline
    while not condition():  # type: ignore[operator]
        if child.proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}:\n{child.output[-3000:]}")
        if time.monotonic() > end:
            child.proc.kill()
            raise AssertionError(f"the run did not reach {what} in {deadline:g} s:\n{child.output[-3000:]}")
        time.sleep(0.1)


def _owned(pid: int) -> tuple[list[psutil.Process], set[int]]:
    """The run's descendant processes and every port it (or they) listen on."""
    root = psutil.Process(pid)
    procs = root.children(recursive=True)
    ports: set[int] = set()
    for proc in [root, *procs]:
        try:
            conns = getattr(proc, "net_connections", None) or proc.connections  # psutil < 6 names it connections
            ports |= {c.laddr.port for c in conns(kind="tcp") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            pass
    return procs, ports


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _assert_nothing_left(tmp: Path, procs: list[psutil.Process], ports: set[int]) -> None:
    deadline = time.monotonic() + 10  # bounded: the kernel reaps and closes asynchronously
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p.pid for p in procs if _alive(p)] == [], "processes of the interrupted run are still running"
    assert sorted(p for p in ports if _listening(p)) == [], "ports of the interrupted run still listen"
    run_dir = tmp / "run"
    assert sorted(p.name for p in run_dir.glob("*")) == [] if run_dir.is_dir() else True
    assert sorted(str(p) for p in tmp.rglob("*.tmp")) == [], "temporary files left"


def _assert_evidence_intact(tmp: Path) -> list[dict[str, object]]:
    records = []
    for path in sorted((tmp / "evidence").glob("*.json")):
        records.append(json.loads(path.read_text()))  # raises if half-written
    return records


def _interrupt(child: Child, sig: signal.Signals) -> None:
    os.kill(child.proc.pid, sig)
    try:
        child.proc.wait(EXIT_DEADLINE)
    except subprocess.TimeoutExpired:
        child.proc.kill()
        raise AssertionError(f"the run did not end within {EXIT_DEADLINE:g} s of {sig.name}:\n"
                             f"{child.output[-3000:]}") from None
    assert child.proc.returncode != 0, "an interrupted run must not report success"


def _sweep_run(tmp: Path) -> Child:
    """The next run: a quick one, whose start-up sweep finds what SIGKILL left."""
    child = _start(tmp, [str(TARGET), "-k", "writes_evidence_first"], "next-run.log")
    child.proc.wait(START_DEADLINE)
    assert child.proc.returncode == 0, child.output[-3000:]
    return child


@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_interrupted_mock_gateway_test_leaves_nothing_behind(sig: signal.Signals, tmp_path: Path) -> None:
    child = _start(tmp_path, [str(TARGET)], "run.log")
    marker = tmp_path / "marker.json"
    _wait_for(lambda: marker.is_file() and marker.stat().st_size > 0, "the held mock-gateway test", child)
    held = json.loads(marker.read_text())
    procs, ports = _owned(child.proc.pid)
    serve = psutil.Process(held["serve_pid"])
    assert serve in procs and {held["mock_port"], held["serve_port"]} <= ports
    assert [p.name for p in (tmp_path / "run").glob("mock-serve-*.json")] == [f"mock-serve-{serve.pid}.json"]

    _interrupt(child, sig)
    evidence = _assert_evidence_intact(tmp_path)
    assert [e["scenario"] for e in evidence] == ["interrupt-probe"]
    if sig == signal.SIGKILL:
        # No teardown ran: the served mock outlived its run and still listens...
        assert _alive(serve) and _listening(held["serve_port"])
        # ...until the next run starts and sweeps it.
        _sweep_run(tmp_path)
    else:
        assert "KeyboardInterrupt" in child.output or "Interrupted" in child.output, child.output[-2000:]
    _assert_nothing_left(tmp_path, procs, ports)


@pytest.mark.skipif(not SOAK.is_file(), reason="suites/test_soak.py is not in this tree")
@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_interrupted_soak_leaves_nothing_behind(sig: signal.Signals, tmp_path: Path) -> None:
    child = _start(tmp_path, [str(SOAK), "-m", "soak", "--client", "raw"], "soak.log",
                   IBGW_SOAK_DURATION="120", IBGW_SOAK_SCHEDULE="none", IBGW_SOAK_CLIENTS="raw")

    def jsonl() -> list[Path]:
        return sorted((tmp_path / "reports" / "soak").glob("*/soak.jsonl"))

    def underway() -> bool:
        # The soak's persistent connection is up (its "connected" event follows the start record): from
        # here its ping loop, mock and evidence file are all live, which is what the signal must interrupt.
        # Signalled at that event, not after a fixed wait (the first interval record comes 10 s in).
        return bool(jsonl()) and '"kind": "connected"' in jsonl()[0].read_text()

    _wait_for(underway, "the soak's first connection", child)
    procs, ports = _owned(child.proc.pid)
    assert ports, "the soak's mock should be listening"
    _interrupt(child, sig)
    lines = jsonl()[0].read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line written so far parses
    assert records[0]["type"] == "start" and len(records) >= 2
    assert ("raw", "connected") in {(r.get("client"), r.get("kind")) for r in records}
    _assert_evidence_intact(tmp_path)
    if sig == signal.SIGKILL:
        _sweep_run(tmp_path)
    _assert_nothing_left(tmp_path, procs, ports)
