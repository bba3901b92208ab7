"""Several Docker engines, for real: the version matrix spread over three
engines (the local one, a second dockerd on its own socket, and the local
engine reached over ssh:// through an sshd on a loopback port), and an
engine stopped in the middle of a run, whose cells `ibgw pin` reports as
missing (inconclusive), never as passed.

The engines come from tests/support/engine_rig.py (a module fixture starts the second
dockerd and sshd, and stops both at the end). A small slice keeps this within
CI's budget: raw client, one zombie run per cell, three versions on three
engines, then two on two.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.core.config import env as config_env
from harness.evidence.pinning import INCONCLUSIVE, MISSING, PASS, RECOMMENDED, build_report, to_markdown
from harness.targets.base import TargetSpecError
from harness.targets.engines import choose_hosts, parse_hosts, spread
from tests.support.engine_rig import Dockerd, Sshd, make_tls_certs, missing_tools
from tests.support.processes import child_env, pytest_cmd, run, run_pytest

THREE = ["10.37", "10.40", "10.50"]  # no regression fixture, not the stand-in's version: every cell must pass
TWO = ["10.40", "10.50"]  # 10.50, the newest, lands on the engine that is stopped


# ------------------------------------------------------------------ no engine needed


def test_engine_urls_are_checked_and_spread_round_robin(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_hosts(["unix:///a.sock,ssh://root@h:22", "unix:///a.sock"]) == ("unix:///a.sock", "ssh://root@h:22")
    with pytest.raises(TargetSpecError, match="not a Docker engine URL; hint"):
        parse_hosts(["/var/run/docker.sock"])
    monkeypatch.setenv("IBGW_DOCKER_HOSTS", "tcp://b:2376, unix:///c.sock")
    assert choose_hosts(None) == ("tcp://b:2376", "unix:///c.sock")
    assert choose_hosts(["unix:///d.sock"]) == ("unix:///d.sock",)  # the option wins over the env
    assert spread(["a", "b", "c"], ("x", "y")) == [("a", "x"), ("b", "y"), ("c", "x")]
    assert spread(["a"], ()) == [("a", None)]


def test_bad_docker_host_is_a_usage_error(tmp_path: Path) -> None:
    proc = run(pytest_cmd("suites/test_version_matrix.py", "--co", "-q", "--docker-host", "docker.sock",
                          evidence_dir=tmp_path), env=child_env(), timeout=120)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "'docker.sock' is not a Docker engine URL" in proc.stderr and "Traceback" not in proc.stderr


def test_unreachable_engine_is_one_line(tmp_path: Path) -> None:
    """A --docker-host nobody answers on: every matrix test fails with the
    one line naming it, no traceback, no container started anywhere."""
    proc = run(pytest_cmd("suites/test_version_matrix.py", "-q", "--client", "raw",
                          "--docker-host", f"unix://{tmp_path}/nobody.sock", evidence_dir=tmp_path / "ev"),
               env=child_env(IBGW_MATRIX_TARGET="docker", IBGW_MATRIX_VERSIONS="10.50"), timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-2000:]
    assert f"no Docker engine at unix://{tmp_path}/nobody.sock (no engine socket there)" in out, out[-2000:]
    assert "Traceback" not in out


def _record(version: str, scenario: str, engine: str, *, lost: bool = False, passed: bool = True) -> dict[str, Any]:
    params: dict[str, Any] = {"gateway_version": version, "matrix": True, "engine": engine}
    if lost:
        params["engine_lost"] = True
    client = {"name": "version-probe"} if scenario == "version_probe" else {"name": "raw", "version": "1"}
    return {"scenario": scenario, "outcome": "passed" if passed and not lost else "failed", "parameters": params,
            "target": {"build": f"{version}.1a"}, "client": client, "server_version": 200,
            "failed_phase": "engine_lost" if lost else None,
            "cause": f"Docker engine {engine} stopped answering" if lost else None}


def test_pin_counts_a_lost_engine_as_missing_and_names_engines(tmp_path: Path) -> None:
    records = [_record("10.40", s, "unix:///a.sock") for s in ("version_probe", "handshake")]
    records += [_record("10.50", "version_probe", "unix:///b.sock"),
                _record("10.50", "handshake", "unix:///b.sock", lost=True)]
    for i, record in enumerate(records):
        (tmp_path / f"{i}.json").write_text(json.dumps(record))
    report = build_report([tmp_path])
    lost = next(c for c in report["cells"] if c["version"] == "10.50")
    assert lost["status"] == MISSING and lost["engines"] == ["unix:///b.sock"]
    assert report["status"] == INCONCLUSIVE and "engine lost mid-run: unix:///b.sock" in report["reason"]
    table = to_markdown(report)
    assert "| engine |" in table and "missing (engine lost)" in table
    assert "| 10.40 | 10.40.1a | 200 | pass | raw | unix:///a.sock | pass |" in table


# ------------------------------------------------------------------ real engines


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any) -> Iterator[tuple[str, Dockerd, Sshd]]:
    """(the local engine's URL, a second dockerd with the slice's images, sshd to the local engine)."""
    from harness.targets.docker_engine import engine_url

    missing = missing_tools()
    if missing:
        why = "needs " + ", ".join(missing)
        if config_env("IBGW_REQUIRE_DOCKER") == "1":
            pytest.fail(f"IBGW_REQUIRE_DOCKER=1 but the several-engines rig {why}", pytrace=False)
        pytest.skip(why)
    local = engine_url(None)
    second = Dockerd("2", tls_dir=make_tls_certs(tmp_path_factory.mktemp("tls")))
    sshd = Sshd(tmp_path_factory.mktemp("sshd"), local)
    t0 = time.monotonic()
    try:
        second.start()
        second.provision_images(sorted(set(THREE) | set(TWO)))
        sshd.start()
        print(f"rig: second engine and sshd ready in {time.monotonic() - t0:.1f} s")
        yield local, second, sshd
    finally:
        sshd.stop()
        second.close()


def _matrix_env(sshd: Sshd, versions: list[str], runs: int = 1) -> dict[str, str]:
    return child_env(IBGW_MATRIX_TARGET="docker", IBGW_MATRIX_VERSIONS=",".join(versions), IBGW_MATRIX_RUNS=str(runs),
                     HOME=str(sshd.home), IBGW_REQUIRE_DOCKER="1")


def _matrix_records(evidence: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((evidence / "matrix").glob("*.json"))]


@pytest.mark.docker
@pytest.mark.timeout(360)  # the rig's first provisioning (images built on the second engine) included
async def test_matrix_spreads_over_three_engines(rig: tuple[str, Dockerd, Sshd], tmp_path: Path) -> None:
    local, second, sshd = rig
    hosts = [local, second.url, sshd.url]
    args = ["suites/test_version_matrix.py", "--client", "raw", "-q"]
    for host in hosts:
        args += ["--docker-host", host]
    t0 = time.monotonic()
    code, out = await run_pytest(*args, evidence_dir=tmp_path / "ev", env=_matrix_env(sshd, THREE), timeout=240)
    seconds = time.monotonic() - t0
    assert code == 0, out[-3000:]
    records = _matrix_records(tmp_path / "ev")
    by_version = {v: {r["parameters"].get("engine") for r in records if r["parameters"]["gateway_version"] == v}
                  for v in THREE}
    # each row on one engine, round robin in the matrix's order, every engine used
    assert by_version == {v: {h} for v, h in zip(THREE, hosts)}, by_version
    assert all(r["outcome"] == "passed" for r in records)
    report = build_report([tmp_path / "ev" / "matrix"])
    assert report["status"] == RECOMMENDED and report["recommended"] == "10.50"
    assert {c["version"]: c["engines"] for c in report["cells"] if c["scenario"] == "handshake"} == \
        {v: [h] for v, h in zip(THREE, hosts)}
    table = to_markdown(report)
    for version, host in zip(THREE, hosts):
        assert any(line.startswith(f"| {version} |") and f"| {host} |" in line for line in table.splitlines()), table
    print(f"three engines, {len(THREE)} versions x raw: {seconds:.1f} s")


@pytest.mark.docker
async def test_container_on_a_tcp_engine_with_tls(rig: tuple[str, Dockerd, Sshd],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """tcp:// with TLS, as docker-py reads it: the second engine's TLS-verified
    listener, the client certificate from DOCKER_CERT_PATH. Without them the
    engine is one line naming the URL; with them a container starts there and
    a client completes its handshake."""
    from harness.clients import make_client
    from harness.scenarios import run_handshake
    from harness.targets.container_target import ContainerTarget
    from harness.targets.docker_engine import EngineUnavailable, engine, forget_engine

    _, second, _ = rig
    assert second.tls_url and second.tls_dir
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    with pytest.raises(EngineUnavailable, match=f"no Docker engine at {second.tls_url} \\("):
        engine(second.tls_url)
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(second.tls_dir))
    system_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if system_bundle.is_file():  # as CI images set it: requests would put it in place of the engine's CA
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(system_bundle))
    target = ContainerTarget("ibgw-mock:10.50", docker_host=second.tls_url, progress=False)
    endpoint = await target.start()
    try:
        assert endpoint.details["engine"] == second.tls_url and endpoint.build.startswith("10.50")
        evidence = await run_handshake(endpoint, make_client("raw"), 31, timeout=10)
        assert evidence.ok, evidence.summary_line()
    finally:
        await target.stop()
    assert not engine(second.tls_url).containers.list(all=True, filters={"label": "ibgw.harness=1"})
    forget_engine(second.tls_url)  # the rig stops this engine at the module's end


@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_engine_stopped_mid_run_leaves_missing_cells(rig: tuple[str, Dockerd, Sshd], tmp_path: Path) -> None:
    """The second engine is stopped as soon as its row's container runs: that
    row's cells are missing (engine lost), the other row still passes, and
    the pin is inconclusive, never a pass of the lost build. Five zombie runs
    per cell: the row's work outlasts the stop by seconds (a container start,
    the probe, a restart, the cells), so the stop lands while it runs."""
    import docker

    local, second, sshd = rig
    assert second.running
    args = ["suites/test_version_matrix.py", "--client", "raw", "-q", "--docker-host", local,
            "--docker-host", second.url]
    run = asyncio.create_task(run_pytest(*args, evidence_dir=tmp_path / "ev", env=_matrix_env(sshd, TWO, runs=5),
                                         timeout=240))
    watcher = docker.DockerClient(base_url=second.url, timeout=10)

    def started() -> bool:
        return bool(watcher.containers.list(filters={"label": "ibgw.harness=1", "status": "running"}))

    try:
        deadline = time.monotonic() + 180
        while not await asyncio.to_thread(started):  # polling: the engine sends us no event for another process
            assert not run.done() and time.monotonic() < deadline, "no container ever ran on the second engine"
            await asyncio.sleep(0.2)
    finally:
        watcher.close()
    await asyncio.to_thread(second.stop)
    code, out = await run
    assert code == 1, out[-3000:]  # the lost row's tests fail: never passed
    assert "stopped answering: cell missing" in out
    records = _matrix_records(tmp_path / "ev")
    lost = [r for r in records if r["parameters"].get("engine_lost")]
    assert lost and {r["parameters"]["gateway_version"] for r in lost} == {"10.50"}
    assert all(r["parameters"]["engine"] == second.url for r in lost)
    assert not [r for r in records if r["parameters"]["gateway_version"] == "10.50" and r["outcome"] == "passed"
                and r["scenario"] != "version_probe"], "a cell on the lost engine passed"
    report = build_report([tmp_path / "ev" / "matrix"])
    cells = {(c["version"], c["scenario"]): c for c in report["cells"]}
    assert all(cells[("10.40", s)]["status"] == PASS for s in ("handshake", "account_sync", "zombie"))
    assert all(cells[("10.50", s)]["status"] == MISSING for s in ("handshake", "account_sync", "zombie"))
    assert report["status"] == INCONCLUSIVE and second.url in report["reason"]
    assert "missing (engine lost)" in to_markdown(report)
