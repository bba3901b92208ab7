"""`ibgw mock serve` / `ibgw mock profiles` as real subprocesses.

The mock must say where it listens (port 0 too), stop with exit 0 on SIGINT
and SIGTERM leaving the port free and no process behind, and turn bad
options and a busy port into one clear line, never a traceback. Every wait
is an event wait with a timeout, never a sleep. Loopback only.
"""

from __future__ import annotations

import json
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.mock import PROFILES
from harness.protocol.framing import HEADER
from harness.protocol.handshake import encode_hello
from tests.support.processes import MockServe, run_cli


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


def _read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, f"the mock closed after {len(data)} of {n} bytes"
            data += chunk
        return data
    return exactly(HEADER.unpack(exactly(HEADER.size))[0])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly(serve: list[MockServe], tmp_path: Path, signum: int) -> None:
    server = start(serve, tmp_path)
    assert psutil.Process(server.proc.pid).children(recursive=True) == []
    # An open session the mock has read to the end (its hello answered), so the stop has a
    # connection to drop and drops it with a FIN: bytes the mock never read would make the
    # kernel answer the close with a reset instead (seen under load with a bare `API\0`).
    client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        client.sendall(encode_hello(100, 176))
        _read_frame(client)  # the server's version and connection time
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
