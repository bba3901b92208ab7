"""`ibgw mock serve` / `ibgw mock profiles` as real subprocesses.

The mock must say where it listens (port 0 too), stop with exit 0 on SIGINT
and SIGTERM leaving the port free and no process behind, and turn bad
options and a busy port into one clear line, never a traceback. Every wait
is an event wait with a timeout, never a sleep. Loopback only.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.mock import PROFILES

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "harness.cli"]
RUN_TIMEOUT = 60


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, check=False)


class MockServe:
    """`ibgw mock serve` as a subprocess; its port is read from the
    "listening on" line it prints (a blocking queue read, not a sleep)."""

    def __init__(self, stderr_path: Path, *args: str, port: int = 0) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")  # a file, so a chatty log can never block the child
        self.proc = subprocess.Popen(
            [*CLI, "mock", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.listening_line = ""
        self.port = self._wait_listening(timeout=30)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self, timeout: float) -> int:
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self.close()
                raise AssertionError(f"mock serve did not report listening within {timeout} s") from None
            if line is None:
                code = self.proc.wait(10)
                self.close()
                raise AssertionError(f"mock serve exited {code}: {self.stderr_path.read_text()}")
            match = re.search(r"listening on 127\.0\.0\.1:(\d+) ", line)
            if match:
                self.listening_line = line.rstrip("\n")
                return int(match.group(1))

    @property
    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._reader.join(5)
        self._stderr.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[MockServe]]:
    """The mock servers a test starts with start(serve, ...); every one is
    terminated (and its pipes closed) at teardown."""
    started: list[MockServe] = []
    yield started
    for server in started:
        server.close()


def start(started: list[MockServe], tmp_path: Path, *args: str) -> MockServe:
    server = MockServe(tmp_path / f"mock{len(started)}.err", *args)
    started.append(server)
    return server


def connect_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


# ---------------------------------------------------------------- serving and stopping


def test_port_0_prints_the_actual_port_and_serves(serve: list[MockServe], tmp_path: Path) -> None:
    server = start(serve, tmp_path)
    assert server.port > 0
    assert re.fullmatch(r"mock Gateway listening on 127\.0\.0\.1:\d+ \(profile default, server version <= 178\)",
                        server.listening_line)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly(serve: list[MockServe], tmp_path: Path, signum: int) -> None:
    server = start(serve, tmp_path)
    assert psutil.Process(server.proc.pid).children(recursive=True) == []
    # An open API session, so the stop has a connection to drop.
    client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        client.sendall(b"API\0")
        server.proc.send_signal(signum)
        assert server.proc.wait(15) == 0, server.stderr
        client.settimeout(5)
        assert client.recv(1024) == b""  # the mock closed the session
    finally:
        client.close()
    err = server.stderr
    assert "Traceback" not in err
    assert f"{signal.Signals(signum).name} received: stopping" in err
    assert connect_refused(server.port)
    assert not psutil.pid_exists(server.proc.pid) or psutil.Process(server.proc.pid).status() == "zombie"
    assert server.proc.pid not in [p.pid for p in psutil.Process().children(recursive=True)]


def test_profile_and_accounts_are_served(serve: list[MockServe], tmp_path: Path) -> None:
    server = start(serve, tmp_path, "--profile", "legacy-157", "--accounts", "DU1112223,DF4445556",
                   "--log-level", "info")
    assert "(profile legacy-157, server version <= 157)" in server.listening_line
    proc = run_cli("probe", "--port", str(server.port), "--json", "--timeout", "10")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["server_version"] == 157
    assert data["accounts"] == ["DU\u2026223", "DF\u2026556"]
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(15) == 0
    # one log line per connection event, on stderr
    assert re.search(r"harness\.mock: conn 1 closed: ", server.stderr)


# ---------------------------------------------------------------- bad options


@pytest.mark.parametrize("accounts", ["DU123,XX999", "U1234567", "du1234567", "DU12-34", "", "DU111,,DU222",
                                      "DU", "DU111,DU111"])
def test_bad_account_id_is_a_usage_error(accounts: str) -> None:
    proc = run_cli("mock", "serve", "--port", "0", "--accounts", accounts)
    assert proc.returncode == 2
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1 and "Invalid value for '--accounts'" in error_lines[0], proc.stderr
    assert "listening" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_bad_account_message_says_what_a_paper_id_looks_like() -> None:
    proc = run_cli("mock", "serve", "--port", "0", "--accounts", "DU111,XX999")
    assert "'XX999' is not a paper account id" in proc.stderr and "DU or DF" in proc.stderr


def test_unknown_profile_lists_valid_ones() -> None:
    proc = run_cli("mock", "serve", "--port", "0", "--profile", "10.99")
    assert proc.returncode == 2
    assert "unknown Gateway profile '10.99'" in proc.stderr
    for name in PROFILES:
        assert name in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--port", "-1"], ["--port", "65536"], ["--port", "x"], ["--max-clients", "0"],
                                  ["--log-level", "loud"]])
def test_bad_flags_are_usage_errors(args: list[str]) -> None:
    proc = run_cli("mock", "serve", *args)
    assert proc.returncode == 2 and "Error: Invalid value" in proc.stderr and "Traceback" not in proc.stderr


def test_port_in_use_is_one_line_exit_1() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        proc = run_cli("mock", "serve", "--host", "127.0.0.1", "--port", str(port))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"port {port} is already in use on 127.0.0.1: ")
    assert lines[0].endswith("hint: choose another --port or stop the other process")
    assert "Traceback" not in proc.stderr and "listening" not in proc.stdout


# ---------------------------------------------------------------- profiles


def test_profiles_lists_every_profile() -> None:
    proc = run_cli("mock", "profiles")
    assert proc.returncode == 0
    for name, profile in PROFILES.items():
        assert re.search(rf"^{re.escape(name)}\s+.*\b{profile.max_server_version}\b", proc.stdout, re.M), name
