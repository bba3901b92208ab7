"""The verdicts that used to be wrong, each from both probe and doctor.

Why subprocesses of the real CLI: an on-call engineer reads the printed line
and the exit code; both must name the cause the evidence supports, and the
two commands must agree. Each situation is reproduced on loopback: the mock
(`ibgw mock serve`) for Gateway faults, tiny servers that speak another
protocol's first bytes for a wrong port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.clients.raw import RawClient
from harness.scenarios.causes import CAUSES
from harness.targets.sockets import close_wait_count
from tests.support.mockclient import until
from tests.support.processes import MockServe, run_cli

HOST = "127.0.0.1"


def mock(tmp_path: Path, *args: str) -> MockServe:
    return MockServe(tmp_path / "mock.err", *args)


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MockServe]:
    server = mock(tmp_path, *request.param)
    try:
        yield server
    finally:
        server.close()


def failed_line(stderr: str, start: str = "FAILED at ") -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(start)]
    assert len(lines) == 1, stderr
    return lines[0]


def sources_printed(text: str) -> list[str]:
    return [line.strip()[len("source: "):] for line in text.splitlines() if line.strip().startswith("source: ")]


# ---------------------------------------------------------------- version range


@pytest.mark.parametrize("served", [("--fault", "max-server-version=150")], indirect=True)
@pytest.mark.parametrize("args, who", [(("--client", "ib_async"), "ib_async"),
                                       (("--client-range", "157..178"), "this client")])
def test_version_below_the_clients_minimum_probe(served: MockServe, args: tuple[str, ...], who: str) -> None:
    proc = run_cli("probe", "--port", str(served.port), "--timeout", "3", *args)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = failed_line(proc.stderr)
    assert f"the Gateway's maximum server version (150) is below {who}'s minimum (157)" in line, line
    assert "upgrade the Gateway or use an older client" in line
    assert "2FA" not in line and "not logged in" not in line
    assert sources_printed(proc.stdout) == [CAUSES["version_range"].source]
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("served", [("--fault", "max-server-version=150")], indirect=True)
def test_version_below_the_clients_minimum_doctor(served: MockServe) -> None:
    proc = run_cli("doctor", "--port", str(served.port), "--timeout", "3")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "NOT HEALTHY" in proc.stdout
    assert "the Gateway's maximum (150) is below ib_async's minimum (157)" in proc.stdout
    assert CAUSES["version_range"].source in sources_printed(proc.stdout)
    # judged as ib_async would: the version rung fails, naming both numbers
    proc = run_cli("doctor", "--port", str(served.port), "--timeout", "3", "--client-range", "157..178", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    version = next(r for r in data["rungs"] if r["name"] == "version reply")
    assert version["verdict"] == "fail" and "(150)" in version["summary"] and "(157)" in version["summary"]
    assert [c["key"] for c in data["causes"]] == ["version_range"]


# ---------------------------------------------------------------- connectivity lost


@pytest.mark.parametrize("served", [("--fault", "connectivity-loss=0,600")], indirect=True)
def test_connectivity_lost_is_not_ready(served: MockServe) -> None:
    proc = run_cli("probe", "--port", str(served.port), "--timeout", "5")
    assert proc.returncode == 6, proc.stdout + proc.stderr
    line = failed_line(proc.stderr, "NOT READY after ")
    assert "API up but IB connectivity lost" in line and "error 1100 at +" in line and "not ready to trade" in line
    assert sources_printed(proc.stdout) == [CAUSES["connectivity_lost"].source]
    proc = run_cli("probe", "--port", str(served.port), "--timeout", "5", "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 6 and data["exit_code"] == 6 and data["verdict"] == "not ready"
    assert [c["key"] for c in data["causes"]] == ["connectivity_lost"]

    proc = run_cli("doctor", "--port", str(served.port), "--timeout", "3")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "NOT HEALTHY" in proc.stdout
    assert "FAIL  IB connectivity" in proc.stdout and "error 1100 at +" in proc.stdout
    assert "not ready to trade" in proc.stdout
    assert CAUSES["connectivity_lost"].source in sources_printed(proc.stdout)


@pytest.mark.parametrize("served", [("--fault", "connectivity-loss=0,600")], indirect=True)
def test_connectivity_lost_through_ib_async(served: MockServe) -> None:
    proc = run_cli("probe", "--port", str(served.port), "--timeout", "5", "--client", "ib_async", "--json")
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["causes"][0]["key"] == "connectivity_lost"


# ---------------------------------------------------------------- the client cap


@pytest.mark.parametrize("served", [("--max-clients", "2")], indirect=True)
async def test_client_cap_is_a_candidate_with_the_established_count(served: MockServe) -> None:
    # The cap counts API clients (connections past startApi), as the Gateway does: two real sessions hold it.
    holders = [RawClient() for _ in range(2)]
    try:
        for client_id, holder in enumerate(holders, start=41):
            await holder.connect(HOST, served.port, client_id, timeout=10)
        await until(lambda: _established(served.port) >= 2, timeout=10)
        probe = await asyncio.to_thread(run_cli, "probe", "--port", str(served.port), "--timeout", "3", "--json")
        doctor = await asyncio.to_thread(run_cli, "doctor", "--port", str(served.port), "--timeout", "2", "--json")
    finally:
        for holder in holders:
            await holder.disconnect()
    assert probe.returncode == 3, probe.stdout + probe.stderr
    data = json.loads(probe.stdout)
    assert "client_cap" in [c["key"] for c in data["causes"]], data
    assert "2 established connection(s) to port" in data["cause_detail"]
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    report = json.loads(doctor.stdout)
    assert "client_cap" in [c["key"] for c in report["causes"]], report["diagnosis"]
    cap = next(c for c in report["causes"] if c["key"] == "client_cap")
    assert "2 established connection(s) to port" in cap["text"] and cap["source"]


def _established(port: int) -> int:
    from harness.targets.sockets import port_sockets

    return sum(1 for row in port_sockets(port) if row.status == "ESTABLISHED")


# ---------------------------------------------------------------- a non-TWS service on the port


class GreetingServer:
    """Speaks another protocol's first bytes: a banner on accept (SSH, VNC)
    or an answer to whatever the client sent (HTTP 400, a TLS alert)."""

    def __init__(self, banner: bytes = b"", answer: bytes = b"") -> None:
        self.banner, self.answer = banner, answer
        self.sock = socket.create_server((HOST, 0))
        self.port = int(self.sock.getsockname()[1])
        self.served = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(30)
                if self.banner:
                    conn.sendall(self.banner)
                if self.answer:
                    conn.recv(4096)
                    conn.sendall(self.answer)
                    return  # then close, as an HTTP server with Connection: close or a TLS alert does
                while conn.recv(4096):  # a banner service waits for the client's next move
                    pass
            except OSError:
                pass
            finally:
                self.served.set()

    def close(self) -> None:
        # close() alone does not wake a thread blocked in accept() (Linux): the join used to sit out
        # its whole 5 s bound. shutdown() ends the accept at once, so the join is an awaited exit.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)
        assert not self._thread.is_alive(), "the greeting server's accept loop did not end"


SERVICES = {
    "HTTP": dict(answer=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    "VNC (RFB)": dict(banner=b"RFB 003.008\n"),
    "SSH": dict(banner=b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
    "TLS": dict(answer=b"\x15\x03\x03\x00\x02\x02\x32"),  # alert: decode_error
}


@pytest.fixture(params=list(SERVICES))
def service(request: pytest.FixtureRequest) -> Iterator[tuple[str, GreetingServer]]:
    server = GreetingServer(**SERVICES[request.param])
    try:
        yield request.param, server
    finally:
        server.close()


def test_non_tws_service_is_named_wrong_port(service: tuple[str, GreetingServer]) -> None:
    protocol, server = service
    proc = run_cli("probe", "--port", str(server.port), "--timeout", "3")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = failed_line(proc.stderr)
    assert f"the port speaks {protocol}, not the TWS API" in line and "wrong port" in line, line
    assert "2FA" not in line and "not logged in" not in line
    assert sources_printed(proc.stdout) == [CAUSES["non_tws"].source]

    proc = run_cli("doctor", "--port", str(server.port), "--timeout", "3", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert [c["key"] for c in data["causes"]] == ["non_tws"], data["diagnosis"]
    assert f"the port speaks {protocol}" in data["diagnosis"][0]
    assert "closed right after accept" not in proc.stdout


@pytest.mark.parametrize("protocol", ["SSH", "HTTP"])
def test_non_tws_service_through_a_real_client(protocol: str) -> None:
    """ib_async only sees a timeout; the probe's second look reads the bytes."""
    server = GreetingServer(**SERVICES[protocol])
    try:
        proc = run_cli("probe", "--port", str(server.port), "--timeout", "2", "--client", "ib_async", "--json")
    finally:
        server.close()
    assert proc.returncode == 3, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert [c["key"] for c in data["causes"]] == ["non_tws"]
    assert f"the port speaks {protocol}" in data["cause_detail"]


# ---------------------------------------------------------------- CLOSE_WAIT past the threshold


@pytest.mark.parametrize("served", [("--fault", "close-wait-leak=3")], indirect=True)
async def test_close_wait_leak_probe_and_doctor_agree(served: MockServe) -> None:
    # Clean disconnects each leave a CLOSE_WAIT behind on the mock; one that
    # races unread start-up bytes goes out as a reset and leaves none, so
    # churn (at most 10 times) until three are there.
    for client_id in range(11, 21):
        client = RawClient(await_account_value=False)
        await client.connect(HOST, served.port, client_id, timeout=10)
        await client.disconnect()
        try:
            await until(lambda: close_wait_count(served.port) >= 3, timeout=1)
            break
        except AssertionError:
            continue
    assert close_wait_count(served.port) >= 3
    probe = await asyncio.to_thread(run_cli, "probe", "--port", str(served.port), "--timeout", "2", "--json")
    doctor = await asyncio.to_thread(run_cli, "doctor", "--port", str(served.port), "--timeout", "2", "--json")
    assert probe.returncode == 3, probe.stdout + probe.stderr
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    probe_keys = [c["key"] for c in json.loads(probe.stdout)["causes"]]
    doctor_keys = [c["key"] for c in json.loads(doctor.stdout)["causes"]]
    assert probe_keys == doctor_keys, (probe_keys, doctor_keys)
    assert probe_keys[0] != "not_logged_in"  # the CLOSE_WAIT evidence leads, not "2FA"
    assert "CLOSE_WAIT" in json.loads(probe.stdout)["cause_detail"]


@pytest.mark.parametrize("served", [("--fault", "max-server-version=150")], indirect=True)
def test_raw_probe_connects_at_150_and_notes_the_installed_client(served: MockServe) -> None:
    """The raw client's range includes 150, so the probe connects (exit 0)
    and notes that ib_async, installed here, cannot (doctor: not healthy)."""
    proc = run_cli("probe", "--port", str(served.port), "--timeout", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "note: the Gateway's maximum (150) is below ib_async's minimum (157)" in proc.stdout


def test_anything_else_that_is_not_a_tws_reply_is_named() -> None:
    server = GreetingServer(banner=b"220 mail.example ESMTP ready\r\n")
    try:
        probe = run_cli("probe", "--port", str(server.port), "--timeout", "3")
        doctor = run_cli("doctor", "--port", str(server.port), "--timeout", "3", "--json")
    finally:
        server.close()
    assert probe.returncode == 3, probe.stdout + probe.stderr
    assert "the port speaks an unknown protocol, not the TWS API" in failed_line(probe.stderr)
    assert doctor.returncode == 1 and json.loads(doctor.stdout)["causes"][0]["key"] == "non_tws"
