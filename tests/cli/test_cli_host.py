"""--host as people mistype it: HOST:PORT, and a name that does not resolve.

Both used to fail the TCP connect with "[Errno -2] Name or service not
known" and be explained as "nothing is listening ... 'Enable ActiveX and
Socket Clients' is off", sending the on-call engineer to the Gateway. Now
HOST:PORT is a usage error naming --host H --port P, and an unresolvable
name has its own cause and hint, the same in probe and doctor (one helper,
harness/scenarios/doctor/host.py diagnose_host).

Names use the .invalid TLD, which never resolves (RFC 6761): the local
resolver answers NXDOMAIN without any traffic to a Gateway. Every CLI run
is a real subprocess with a hard cap (tests/support/processes.py RUN_TIMEOUT), so a
resolver that hangs fails the test instead of holding it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest

from harness.scenarios.doctor import RESOLVE_TIMEOUT_S, diagnose_host, host_port_in_host
from tests.support.processes import run_cli

BAD_NAME = "nosuchhost.invalid"
CAUSE = f"cannot resolve host {BAD_NAME}"
GATEWAY_WORDING = ("nothing is listening", "Enable ActiveX", "Gateway down")
ADAPTER = "examples.isolated_worker.adapter:factory"


# ---------------------------------------------------------------- HOST:PORT


@pytest.mark.parametrize("host, name, port", [
    ("127.0.0.1:4002", "127.0.0.1", "4002"),
    ("localhost:7497", "localhost", "7497"),
    ("[::1]:4002", "::1", "4002"),
])
def test_host_port_is_recognised(host: str, name: str, port: str) -> None:
    assert host_port_in_host(host) == (name, port)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "fe80::1%lo", "::ffff:127.0.0.1", "::1:4002",
                                  BAD_NAME])
def test_names_and_bare_ipv6_literals_are_not_host_port(host: str) -> None:
    assert host_port_in_host(host) is None


@pytest.mark.parametrize("command", [["probe"], ["doctor"], ["doctor", "--client", ADAPTER]])
def test_host_port_in_host_is_a_usage_error_naming_host_and_port(command: list[str]) -> None:
    proc = run_cli(*command, "--host", "127.0.0.1:4002", "--json")
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    expected = "Error: Invalid value for '--host': '127.0.0.1:4002' looks like HOST:PORT; use --host 127.0.0.1 --port 4002"
    assert errors == [expected], proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr


def test_a_bare_ipv6_literal_is_a_host() -> None:
    """'::1' has colons and is still a host: it reaches the connect (refused here), not a usage error."""
    with socket.socket(socket.AF_INET6) as probe_socket:
        try:
            probe_socket.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback on this host")
        port = probe_socket.getsockname()[1]  # bound, never listening: refused
    proc = run_cli("probe", "--host", "::1", "--port", str(port), "--timeout", "5")
    assert proc.returncode == 2, proc.stderr
    assert "FAILED at tcp_connect" in proc.stderr and "connection refused" in proc.stderr


# ---------------------------------------------------------------- a name that does not resolve


def test_probe_names_an_unresolvable_host_and_exits_2() -> None:
    proc = run_cli("probe", "--host", BAD_NAME, "--timeout", "5")
    assert proc.returncode == 2, proc.stderr
    failed = [line for line in proc.stderr.splitlines() if line.startswith("FAILED at ")]
    assert len(failed) == 1 and failed[0].startswith("FAILED at tcp_connect after "), proc.stderr
    assert f": {CAUSE}: " in failed[0]
    assert "hint: check the host name" in proc.stderr.splitlines()
    assert not any(words in proc.stderr for words in GATEWAY_WORDING), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_probe_json_carries_the_cause_and_hint() -> None:
    proc = run_cli("probe", "--host", BAD_NAME, "--json", "--timeout", "5")
    assert proc.returncode == 2, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["failed_phase"], data["error"], data["hint"], data["exit_code"]) == (
        "tcp_connect", CAUSE, "check the host name", 2)


def test_doctor_names_an_unresolvable_host_and_nothing_else() -> None:
    proc = run_cli("doctor", "--host", BAD_NAME, "--timeout", "5")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    port_line = next(line for line in lines if "port reachable" in line)
    assert port_line.split()[0] == "FAIL" and CAUSE in port_line
    assert any(line.strip() == "fix: check the host name" for line in lines), proc.stdout
    assert lines[lines.index("Diagnosis:") + 1] == f"  - {CAUSE}"
    assert not any(words in proc.stdout for words in GATEWAY_WORDING), proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout


def test_doctor_client_names_an_unresolvable_host_not_the_gateway() -> None:
    proc = run_cli("doctor", "--host", BAD_NAME, "--timeout", "5", "--client", ADAPTER)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[0].startswith(f"ERROR: {CAUSE}: "), proc.stderr
    assert proc.stderr.splitlines()[1:] == ["hint: check the host name"], proc.stderr
    assert "Verdict" not in proc.stdout and "Traceback" not in proc.stderr


async def test_a_hanging_resolver_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver that never answers costs the timeout, not the command."""
    release = threading.Event()

    def hang(*args: object, **kwargs: object) -> list[object]:
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    try:
        started = time.monotonic()
        problem = await diagnose_host(BAD_NAME, 0.3)
        took = time.monotonic() - started
    finally:
        release.set()
    assert problem is not None and problem.cause == CAUSE and "did not answer within 0.3 s" in problem.meaning
    # Bounded by the 0.3 s, not by the 30 s the resolver hangs: a generous margin for a loaded machine.
    assert took < 0.3 + 5.0
    assert RESOLVE_TIMEOUT_S <= 10  # --timeout 3600 must not mean an hour of waiting for DNS


async def test_a_resolvable_name_is_no_problem() -> None:
    assert await asyncio.wait_for(diagnose_host("localhost"), RESOLVE_TIMEOUT_S + 1) is None
