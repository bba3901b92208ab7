"""The mock as a service in a team's CI, run locally: gateway-docker/mock/compose.yml
started with `docker compose` (Debian's docker-compose, or the compose plugin),
healthy through the image's API-level HEALTHCHECK, then this repository's
handshake and account-sync suites run against it through the plugin with
`--gateway 127.0.0.1:PORT`, as the README's GitHub Actions and GitLab CI
recipes do. The service is brought down at the end, whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from harness.core.config import env as config_env
from harness.targets.container_target import free_port
from tests.support.processes import REPO, child_env, run_pytest

COMPOSE_FILE = REPO / "gateway-docker" / "mock" / "compose.yml"
IMAGE = "ibgw-mock:10.45"
HEALTHY_WITHIN_S = 90.0  # the compose file checks every 2 s; generous for a loaded machine


def compose_command() -> list[str] | None:
    """`docker-compose` (Debian's package) or `docker compose` (the plugin), whichever is here."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def _health(client: Any, project: str) -> str:
    containers = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
    if not containers:
        return "no container"
    return str(((containers[0].attrs.get("State") or {}).get("Health") or {}).get("Status", "no healthcheck"))


@pytest.mark.docker
@pytest.mark.timeout(300)
async def test_compose_service_passes_handshake_and_account_sync(docker_engine: Any, tmp_path: Path) -> None:
    compose = compose_command()
    if compose is None:
        why = "needs docker-compose (Debian's package) or the docker compose plugin"
        if config_env("IBGW_REQUIRE_DOCKER") == "1":
            pytest.fail(f"IBGW_REQUIRE_DOCKER=1 but the mock-service test {why}", pytrace=False)
        pytest.skip(why)
    docker_engine.images.get(IMAGE)  # provisioned by .ci/provision-docker (make images)
    port = free_port()
    project = f"ibgwsvc{os.getpid()}"
    env = dict(os.environ, IBGW_MOCK_PORT=str(port), IBGW_MOCK_IMAGE=IMAGE)
    base = [*compose, "-f", str(COMPOSE_FILE), "-p", project]
    t0 = time.monotonic()
    try:
        up = subprocess.run([*base, "up", "-d"], env=env, capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stderr[-2000:]
        status = "starting"
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while status != "healthy" and time.monotonic() < deadline:
            await asyncio.sleep(0.5)  # polling: the engine's health status has no event we could await here
            status = await asyncio.to_thread(_health, docker_engine, project)
            assert status in ("starting", "healthy"), status
        assert status == "healthy", f"not healthy within {HEALTHY_WITHIN_S:g} s: {status}"
        healthy_after = time.monotonic() - t0
        code, out = await run_pytest("suites/test_handshake.py", "suites/test_account_sync.py", "-q",
                                     "--gateway", f"127.0.0.1:{port}", "--ibgw-pause", "0",
                                     evidence_dir=tmp_path / "evidence", env=child_env(), timeout=240)
        assert code == 0, out[-3000:]
        assert " passed" in out and "failed" not in out.splitlines()[-1], out[-1500:]
        assert "(paper)" in out  # the live run's account check saw the service's paper account
    finally:
        down = subprocess.run([*base, "down", "-t", "5"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr[-2000:]
    assert _health(docker_engine, project) == "no container"
    print(f"compose service healthy in {healthy_after:.1f} s; suites and teardown in {time.monotonic() - t0:.1f} s")
