"""The docker-py container target, the stand-in image and the clean-up rules.

Tests marked `docker` need an engine with the harness images built
(.ci/provision-docker): without one they skip with the reason, and they FAIL
under IBGW_REQUIRE_DOCKER=1 (CI). The others run anywhere.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from harness.mock.healthcheck import check_api_ready
from harness.targets import TargetSpecError, parse_target
from harness.targets.container_target import (
    ContainerNotReady,
    ContainerTarget,
    container_close_wait,
    split_image,
)
from harness.targets.docker_engine import LABEL_PID, LABEL_RUN, RUN_ID, remove_container, run_labels
from harness.targets.proc_net import count_state, parse_proc_net_tcp
from harness.targets.sockets import close_wait_count
from tests.support import ROOT
from tests.support.processes import pytest_cmd, run

VICTIM = ROOT / "tests" / "docker_victims" / "victim_container.py"
MOCK_IMAGE = "ibgw-mock:10.45"
LEAKY_IMAGE = "ibgw-mock:10.41"  # regression fixture: api-wedge=no-read,2 (gnzsnz/ib-gateway-docker#336)
STANDIN_IMAGE = "ibgw-standin:10.45"
NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
NOT_REQUIRED = {"IBGW_REQUIRE_DOCKER": "", "HARNESS_REQUIRE_DOCKER": ""}  # the old name too (still read)

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0FA2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0FA2 0100007F:D431 08 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:0FA2 0100007F:D432 08 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:D433 0100007F:0FA2 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
  sl  local_address                         remote_address                        st tx_queue
   0: 0000000000000000FFFF00000100007F:0FA2 0000000000000000FFFF00000100007F:D434 08 00000000:00000000
"""


# ---------------------------------------------------------------- anywhere


def test_proc_net_parser_counts_close_wait_on_the_local_port_only():
    rows = parse_proc_net_tcp(PROC_NET_TCP)
    assert len(rows) == 5
    assert count_state(rows, 4002) == 3  # two IPv4 + one IPv6-mapped, not the client side (local D433)
    assert count_state(rows, 4002, "LISTEN") == 1
    assert count_state(rows, 0xD433, "CLOSE_WAIT") == 0


@pytest.mark.parametrize("ref, expected", [
    ("ibgw-mock:10.45", ("ibgw-mock", "10.45")),
    ("ghcr.io/gnzsnz/ib-gateway:10.45.1j", ("ghcr.io/gnzsnz/ib-gateway", "10.45.1j")),
    ("localhost:5000/ib-gateway", ("localhost:5000/ib-gateway", "latest")),
    ("ibgw-mock", ("ibgw-mock", "latest")),
])
def test_image_references(ref, expected):
    assert split_image(ref) == expected


def test_docker_spec_selects_the_container_target():
    target = parse_target("docker:ibgw-mock:10.41")
    assert isinstance(target, ContainerTarget) and target.image == "ibgw-mock:10.41"
    with pytest.raises(TargetSpecError, match="names no image"):
        parse_target("docker:")


def test_ready_timeout_comes_from_the_environment_or_the_images_kind(monkeypatch):
    """A real Gateway logs in through IBC in up to minutes: 180 s unless
    IBGW_READY_TIMEOUT says otherwise; a bad value is refused up front."""
    from harness.targets.base import TargetSpecError
    from harness.targets.container_target import READY_TIMEOUT_S, ContainerTarget

    monkeypatch.delenv("IBGW_READY_TIMEOUT", raising=False)
    assert ContainerTarget("gnzsnz/ib-gateway:stable").ready_timeout is None  # decided by the image's kind
    assert READY_TIMEOUT_S == {"mock": 60.0, "standin": 60.0, "gateway": 180.0}
    assert ContainerTarget("x:1", ready_timeout=5).ready_timeout == 5
    monkeypatch.setenv("IBGW_READY_TIMEOUT", "300")
    assert ContainerTarget("gnzsnz/ib-gateway:stable").ready_timeout == 300.0
    for bad in ("soon", "0", "-5", "99999"):
        monkeypatch.setenv("IBGW_READY_TIMEOUT", bad)
        with pytest.raises(TargetSpecError, match="IBGW_READY_TIMEOUT=.* is not a number of seconds in 1..3600"):
            ContainerTarget("gnzsnz/ib-gateway:stable")
    proc = _pytest("--gateway", "docker:ibgw-mock:10.45", "tests/evidence/test_pinning.py::test_version_order",
                   env={"IBGW_READY_TIMEOUT": "soon"})
    assert proc.returncode == 4 and "Traceback" not in proc.stderr, proc.stderr
    assert "IBGW_READY_TIMEOUT='soon'" in proc.stderr


def test_labels_name_the_run_and_its_owner():
    labels = run_labels()
    assert labels[LABEL_RUN] == RUN_ID and labels[LABEL_PID] == str(os.getpid())


def _pytest(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run(pytest_cmd("-q", "-rs", *args), env={**os.environ, **(env or {})}, timeout=timeout)


def test_no_engine_is_a_one_line_error_with_the_fix():
    proc = _pytest("--gateway", "docker:ibgw-mock:10.45", "tests/evidence/test_pinning.py::test_version_order",
                   env={**NO_ENGINE, **NOT_REQUIRED})
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    for fix in ("start Docker", "DOCKER_HOST", "--gateway mock"):
        assert fix in line


def test_docker_tests_skip_without_an_engine_and_fail_when_required():
    skipped = _pytest(str(VICTIM), env={**NO_ENGINE, **NOT_REQUIRED})
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout
    assert "no Docker engine" in skipped.stdout and "start Docker" in skipped.stdout
    required = _pytest(str(VICTIM), env={**NO_ENGINE, **NOT_REQUIRED, "IBGW_REQUIRE_DOCKER": "1"})
    assert required.returncode != 0 and "IBGW_REQUIRE_DOCKER=1 but no Docker engine" in required.stdout


# ---------------------------------------------------------------- with an engine


@pytest.mark.docker
def test_a_missing_image_is_a_one_line_error_before_any_test(docker_engine):
    """A typo in the image is configuration: one line with the fix, before
    any test runs, not a set-up traceback repeated for every test."""
    proc = _pytest("--gateway", "docker:ibgw-no-such-image:0.0", "tests/evidence/test_pinning.py::test_version_order")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert "image ibgw-no-such-image:0.0 is not on this engine" in line and "make images" in line
    assert "passed" not in proc.stdout


def _run_containers(client, run_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})


@pytest.mark.docker
async def test_mock_container_lifecycle(docker_engine):
    target = ContainerTarget(MOCK_IMAGE, ready_timeout=30)
    endpoint = await target.start()
    try:
        assert endpoint.kind == "container" and endpoint.host == "127.0.0.1"
        assert endpoint.build == "10.45.1j" and endpoint.profile == "10.45"  # read from the image
        container = target.container
        assert container.labels[LABEL_RUN] == RUN_ID and container.labels[LABEL_PID] == str(os.getpid())
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        code, out = container.exec_run(["sh", "-c", "ulimit -n"])
        assert code == 0 and out.decode().strip() == "10000"
        # The image's own HEALTHCHECK command: an API-level handshake inside the container.
        code, out = container.exec_run(["python3", "-m", "harness.mock.healthcheck", "--port", str(endpoint.port)])
        assert code == 0 and out.decode().startswith("ready: server version"), out
        started = container.attrs["State"]["StartedAt"]
        await target.restart()
        container.reload()
        assert container.attrs["State"]["StartedAt"] != started  # a cold restart: a new process
        assert (await check_api_ready("127.0.0.1", endpoint.port)).ready
    finally:
        await target.stop()
    assert not [c for c in _run_containers(docker_engine, RUN_ID) if c.id == container.id]


@pytest.mark.docker
@pytest.mark.parametrize("image, ready, expected", [(LEAKY_IMAGE, 1, 1), (MOCK_IMAGE, 2, 0)],
                         ids=["10.41-wedges", "10.45-clean"])
def test_close_wait_reader_sees_the_containers_own_namespace(docker_engine, image, ready, expected):
    """The Gateway in a container with its own network namespace (network
    none), the client in a second container joined to it: only reading
    /proc/net/tcp through exec sees the Gateway's CLOSE_WAIT sockets; the
    host's table sees none of them."""
    host_before = close_wait_count(4002)
    gateway = docker_engine.containers.run(image, detach=True, network_mode="none", labels=run_labels(),
                                           environment={"IBGW_MOCK_PORT": "4002"})
    try:
        churn = ("import asyncio\nfrom harness.mock.healthcheck import check_api_ready\n"
                 "async def main():\n"
                 "    for _ in range(60):\n"  # bounded: the Gateway may still be starting
                 "        if (await check_api_ready('127.0.0.1', 4002, timeout=1, graceful=True)).ready: break\n"
                 "        await asyncio.sleep(0.1)\n"
                 "    for _ in range(2): print((await check_api_ready('127.0.0.1', 4002, graceful=True)).line(), flush=True)\n"
                 "asyncio.run(main())\n")
        client = docker_engine.containers.run(image, ["python3", "-c", churn], detach=True,
                                              network_mode=f"container:{gateway.id}", labels=run_labels())
        try:
            assert client.wait(timeout=60)["StatusCode"] == 0, client.logs().decode()
            # 10.41 wedges once two API sessions ended (the readiness wait's and the first probe's): the second
            # probe is accepted, never read, and its close leaves one CLOSE_WAIT socket owned by the Gateway.
            assert client.logs().decode().count("ready: server version") == ready, client.logs().decode()
        finally:
            remove_container(client)
        deadline = time.monotonic() + 5
        count = container_close_wait(gateway, 4002)
        while count != expected and time.monotonic() < deadline:
            time.sleep(0.1)  # bounded polling of kernel socket state (no event exists)
            count = container_close_wait(gateway, 4002)
        assert count == expected
        assert close_wait_count(4002) == host_before  # invisible from the host namespace
    finally:
        remove_container(gateway)


def _first_health_status(client, container, timeout: float) -> str | None:
    """The container's first health_status event from the engine's event
    stream (the engine pushes it; the stream ends at `until`, so the wait is
    bounded), starting the container only once the stream is open."""
    since = int(time.time())
    events = client.events(decode=True, since=since, until=since + int(timeout) + 1,
                           filters={"container": container.id, "event": "health_status"})
    try:
        container.start()
        for event in events:
            return str(event.get("status", "")).rpartition(": ")[2] or None
        return None
    finally:
        events.close()


@pytest.mark.docker
@pytest.mark.parametrize("faults, expected", [("", "healthy"), ("close-after-accept", "unhealthy")],
                         ids=["ready", "port-open-api-closed"])
def test_image_healthcheck_reports_the_api_not_the_port(docker_engine, faults, expected):
    """The mock image's own HEALTHCHECK command (inherited from the image: only
    its interval, start period and retries are shortened here) turns the
    container healthy when the API answers, and unhealthy when the port accepts
    but the API layer closes the connection: what a port check would call up.
    Network none: the check runs on the container's own loopback."""
    container = docker_engine.containers.create(
        MOCK_IMAGE, detach=True, network_mode="none", labels=run_labels(),
        environment={"IBGW_MOCK_PORT": "4002", "IBGW_FAULTS": faults},
        healthcheck={"interval": 1_000_000_000, "start_period": 1_000_000, "retries": 2})
    try:
        image_test = docker_engine.images.get(MOCK_IMAGE).attrs["Config"]["Healthcheck"]["Test"]
        assert container.attrs["Config"]["Healthcheck"]["Test"] == image_test  # the image's own command
        assert "harness.mock.healthcheck" in " ".join(image_test)
        assert _first_health_status(docker_engine, container, timeout=45) == expected
        container.reload()
        last = container.attrs["State"]["Health"]["Log"][-1]
        if expected == "healthy":
            assert last["ExitCode"] == 0 and last["Output"].startswith("ready: server version"), last
        else:
            assert last["ExitCode"] != 0 and last["Output"].startswith("not ready: ") \
                and ("server_version" in last["Output"] or "version reply" in last["Output"]), last
    finally:
        remove_container(container)


@pytest.mark.docker
def test_a_port_only_healthcheck_calls_a_logging_in_gateway_healthy(docker_engine):
    """The health check people put on the gnzsnz image (`echo > /dev/tcp/127.0.0.1/4004`)
    goes healthy on socat alone while IB Gateway is still logging in; at the same
    moment the harness's API-level check, run in that container, says not ready.
    Why the image's HEALTHCHECK and the readiness wait speak the API, never the port."""
    container = docker_engine.containers.create(
        STANDIN_IMAGE, detach=True, network_mode="none", labels=run_labels(),
        environment={"TWS_USERID": "standin-user", "TWS_PASSWORD": "s3cret-standin", "IBGW_LOGIN_DELAY": "120"},
        healthcheck={"test": ["CMD", "bash", "-c", "echo > /dev/tcp/127.0.0.1/4004"], "interval": 500_000_000,
                     "start_period": 1_000_000, "retries": 2, "timeout": 2_000_000_000})
    try:
        assert _first_health_status(docker_engine, container, timeout=30) == "healthy"
        code, out = container.exec_run(["python3", "-m", "harness.mock.healthcheck", "--port", "4004",
                                        "--timeout", "2"])
        assert code != 0 and out.decode().startswith("not ready"), out
        assert "Login has completed" not in container.logs().decode()
    finally:
        remove_container(container)


@pytest.mark.docker
async def test_standin_is_shaped_like_the_gnzsnz_image(docker_engine):
    target = ContainerTarget(STANDIN_IMAGE, env={"TWS_USERID": "standin-user", "TWS_PASSWORD": "s3cret-standin"},
                             login_delay=3, ready_timeout=1, progress=False)
    try:
        # socat accepts at once and drops the connection: "port open" is not "ready"
        with pytest.raises(ContainerNotReady, match="TCP accepted, then closed before the version reply") as exc:
            await target.start()
        assert "socat E connect" in exc.value.logs and "Login dialog" in exc.value.logs
        target.ready_timeout = 20  # from now on: the login, then the RESTART below
        ready = await target.wait_ready()
        assert ready.ready
        logs = target.logs()
        assert "IBC: Login has completed" in logs and "Configuration tasks completed" in logs
        assert "s3cret-standin" not in logs
        assert target.gateway_build() == "10.45.1j"
        # IBC's RESTART: every API client dropped, the container itself keeps running
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        from harness.protocol.handshake import exchange_versions

        assert (await asyncio.wait_for(exchange_versions(reader, writer, 100, 200), 5)).server_version  # through the forwarder
        started = target.container.attrs["State"]["StartedAt"]
        await target.restart(cold=False)
        assert await asyncio.wait_for(reader.read(100), 5) == b""  # dropped by the restart
        writer.close()
        target.container.reload()
        assert target.container.attrs["State"]["StartedAt"] == started
        assert "Restart requested via command server" in target.logs()
    finally:
        await target.stop()


@pytest.mark.docker
async def test_standin_without_credentials_never_logs_in(docker_engine):
    target = ContainerTarget(STANDIN_IMAGE, login_delay=0, ready_timeout=2, progress=False)
    try:
        with pytest.raises(ContainerNotReady) as exc:
            await target.start()
        assert "Login failed: no credentials" in exc.value.logs
    finally:
        await target.stop()


def _victim(hold: float, **env: str) -> tuple[subprocess.Popen[str], str, str]:
    """A pytest subprocess holding a container; returns it, its container id and its run id."""
    proc, line, run_id = _victim_line(hold, **env)
    return proc, line.split()[1], run_id


def _victim_line(hold: float, **env: str) -> tuple[subprocess.Popen[str], str, str]:
    """The victim, its VICTIM-CONTAINER line (id, pid, port) and its run id."""
    run_id = f"victim{os.getpid()}{int(time.monotonic() * 1000) % 100000}"
    proc, line = _victim_run(marker="VICTIM-CONTAINER", what="the victim never started its container",
                             env={**os.environ, "VICTIM_HOLD": str(hold), "IBGW_RUN_ID": run_id, **env},
                             start_new_session=True)
    return proc, line, run_id


def _victim_run(*args: str, marker: str, what: str, **popen: Any) -> tuple[subprocess.Popen[str], str]:
    """`pytest VICTIM ARGS`, started now; it and its first line starting with `marker` (within 60 s)."""
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", str(VICTIM), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, **popen)
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 60
    for line in proc.stdout:  # ends at the marker, or when the run exits without printing it
        if line.startswith(marker):
            return proc, line
        seen.append(line)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"{what}: {''.join(seen)}{proc.communicate()[0]}")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


SWEEP_ATTEMPTS = 3


def _gated_next_run(select: str, **env: str) -> subprocess.Popen[str]:
    """The next run, started and held at its session start (tests/docker_victims/conftest.py)
    until `_release` lets it sweep: the window in which a sibling worker's nested session
    could sweep the orphan first shrinks from a Python start-up to milliseconds."""
    nxt, _ = _victim_run("-k", select, marker="VICTIM-GATE-READY", what="the next run never reached its session start",
                         stdin=subprocess.PIPE, env={**os.environ, "VICTIM_GATE": "1", **env})
    return nxt


def _release(nxt: subprocess.Popen[str]) -> tuple[int, str]:
    """Let the held run sweep and finish; its exit code and whole output."""
    out, _ = nxt.communicate("go\n", timeout=120)
    return nxt.returncode, out


@pytest.mark.docker
def test_a_sigkilled_run_leaves_no_container_after_the_next_runs_start(docker_engine):
    """A full pytest run of a container test, started after a SIGKILLed one,
    sweeps that run's container at start-up. A sibling worker's nested session
    can still, rarely, take the orphan in the milliseconds after the release:
    then the scenario is played again (at most SWEEP_ATTEMPTS times)."""
    for _ in range(SWEEP_ATTEMPTS):
        proc, container_id, run_id = _victim(hold=60)
        nxt = _gated_next_run("test_hold_a_container", VICTIM_HOLD="0")
        os.killpg(proc.pid, signal.SIGKILL)  # no handler runs: the container is orphaned
        proc.wait(timeout=10)
        orphans = _run_containers(docker_engine, run_id)
        assert [c.id for c in orphans] == [container_id]
        code, out = _release(nxt)
        assert code == 0, out
        assert _run_containers(docker_engine, run_id) == []
        if "left by dead runs" in out:
            return
    pytest.fail(f"in {SWEEP_ATTEMPTS} attempts another session swept the orphan before this run's own sweep")


@pytest.mark.docker
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_removes_the_runs_containers_and_a_live_run_is_never_swept(docker_engine, signum):
    from harness.targets.docker_engine import sweep_orphans

    proc, container_id, run_id = _victim(hold=60)
    try:
        sweep_orphans()  # the victim is alive: its container must survive another run's sweep
        assert [c.id for c in _run_containers(docker_engine, run_id)] == [container_id]
        os.killpg(proc.pid, signum)
        proc.wait(timeout=30)
        assert _run_containers(docker_engine, run_id) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)



@pytest.mark.docker
def test_a_plain_run_after_a_sigkilled_one_sweeps_its_container_at_session_start(docker_engine):
    """The next run starts no container at all (a plain test): the sweep at
    session start removes what the SIGKILLed run left, and with it the port
    its host-networking mock still listened on.

    Any pytest session on this engine sweeps dead runs' containers, so the
    next run is held at its session start until the kill (`_gated_next_run`).
    If a sibling worker's nested run still takes the orphan first, the orphan
    is gone but this run had nothing to say, and the scenario is played again
    (at most SWEEP_ATTEMPTS times). A broken sweep cannot pass that way: the
    orphan would still be there after the next run."""
    for _ in range(SWEEP_ATTEMPTS):
        proc, line, run_id = _victim_line(hold=60)
        container_id, port = line.split()[1], int(line.split()[5])
        nxt = _gated_next_run("test_after_the_held_one")
        os.killpg(proc.pid, signal.SIGKILL)  # no handler runs: the container is orphaned
        proc.communicate(timeout=10)
        assert [c.id for c in _run_containers(docker_engine, run_id)] == [container_id]
        assert _listening(port), "the orphaned container's Gateway should still listen"
        code, out = _release(nxt)
        assert code == 0 and "1 passed" in out, out
        assert _run_containers(docker_engine, run_id) == []
        assert not _listening(port)
        if "left by dead runs" in out:
            return
    pytest.fail(f"in {SWEEP_ATTEMPTS} attempts another session swept the orphan before this run's own sweep")


@pytest.mark.docker
@pytest.mark.parametrize("cleanup_raises", [False, True], ids=["clean-up-finds-it-gone", "clean-up-raises"])
def test_ctrl_c_in_a_container_test_ends_the_session_with_exit_2(docker_engine, cleanup_raises):
    """Ctrl-C (SIGINT to the run's process group, as a terminal sends it)
    while a container test holds its container: the handler removes the
    container, the test's own clean-up finds it gone without an error, and
    the session ends with pytest's interrupted exit (2): the test after it
    never runs. Even a clean-up that raises (hiding the KeyboardInterrupt)
    does not let the session carry on."""
    env = {"VICTIM_CLEANUP_RAISES": "1"} if cleanup_raises else {}
    proc, line, run_id = _victim_line(hold=60, **env)
    port = int(line.split()[5])
    assert _listening(port)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 2, out[-3000:]
    assert "VICTIM-SESSION-WENT-ON" not in out, "the interrupt was swallowed: the session carried on"
    assert "NotFound" not in out and "No such container" not in out, out[-3000:]
    assert "KeyboardInterrupt" in out or "SIGINT received" in out, out[-3000:]
    assert _run_containers(docker_engine, run_id) == []
    assert not _listening(port)


@pytest.mark.docker
def test_an_ibgw_command_that_starts_a_container_sweeps_a_dead_runs_first(docker_engine, tmp_path):
    """`ibgw soak --gateway docker:IMAGE` after a SIGKILLed run: the dead run's
    container is removed before the soak's own container starts."""
    from tests.support.processes import run_cli

    proc, container_id, run_id = _victim(hold=60)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert [c.id for c in _run_containers(docker_engine, run_id)] == [container_id]
    soak = run_cli("soak", "--gateway", f"docker:{MOCK_IMAGE}", "--duration", "2", "--client", "raw",
                   "--schedule", "none", "--out", str(tmp_path / "soak"), timeout=120)
    assert soak.returncode == 0, soak.stdout + soak.stderr
    assert "left by dead runs" in soak.stderr, soak.stderr
    assert _run_containers(docker_engine, run_id) == []
