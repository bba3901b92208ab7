"""`ibgw watch` against the gnzsnz-shaped stand-in container (real engine,
host networking, loopback only): the wedge is detected, IBC's command server
restarts the Gateway inside the running container, the API is healthy
again, and the whole episode is recorded.

The container runs this checkout's harness/mock and harness/protocol
(mounted read-only over the image's copy), so the test judges the code under
test, not the image's build-time snapshot.
"""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest

from harness.targets.container_target import free_port
from harness.targets.docker_engine import run_labels
from harness.targets.sockets import close_wait_count
from harness.watch.policy import RestartPolicy
from harness.watch.watchdog import WatchConfig, Watchdog
from tests.support import ROOT

STANDIN_IMAGE = "ibgw-standin:10.45"
# The wedge the stand-in takes at start (IBGW_FAULTS). One line to change when the api-wedge fault lands:
# "api-wedge=no-read,2" (or no-accept).
WEDGE_FAULT = "api-wedge=no-read,2"


def _close_wait(ports: set[int]) -> int:
    return close_wait_count(ports, either_end=True)


@pytest.mark.docker
@pytest.mark.timeout(240)  # the episode is bounded inside at 180 s
async def test_watch_restarts_a_wedged_standin_container_through_ibc(docker_engine):
    published, api, command = free_port(), free_port(), free_port()
    container = docker_engine.containers.run(
        STANDIN_IMAGE, detach=True, network_mode="host", labels=run_labels(),
        environment={"TWS_USERID": "standin-user", "TWS_PASSWORD": "s3cret-standin", "IBGW_LOGIN_DELAY": "1",
                     "IBGW_RESTART_DOWN": "1", "IBGW_FAULTS": WEDGE_FAULT, "IBGW_STANDIN_BIND": "127.0.0.1",
                     "IBGW_STANDIN_PORT": str(published), "IBGW_STANDIN_API_PORT": str(api),
                     "IBGW_STANDIN_COMMAND_PORT": str(command)},
        volumes={str(ROOT / "harness" / "mock"): {"bind": "/opt/ibgw/harness/mock", "mode": "ro"},
                 str(ROOT / "harness" / "protocol"): {"bind": "/opt/ibgw/harness/protocol", "mode": "ro"},
                 str(ROOT / "harness" / "core"): {"bind": "/opt/ibgw/harness/core", "mode": "ro"}})
    evidence = io.StringIO()
    dog = Watchdog(WatchConfig("127.0.0.1", published, ("127.0.0.1", command), interval_s=0.5, timeout_s=3,
                               login_grace_s=120, socket_ports={api}),
                   RestartPolicy(confirm=2, backoff_s=0, restart_grace_s=60), evidence=evidence)
    task = asyncio.create_task(dog.run())
    try:
        await asyncio.to_thread(container.reload)
        started_at = container.attrs["State"]["StartedAt"]
        async with asyncio.timeout(180):
            while not dog.episodes:  # each probe sets the event: no sleep
                dog.changed.clear()
                await dog.changed.wait()
        dog.stop()
        await task
        container.reload()
        logs = container.logs().decode("utf-8", "replace")
        assert container.status == "running" and container.attrs["State"]["StartedAt"] == started_at  # IBC, not docker
        assert "Restart requested via command server" in logs and "s3cret-standin" not in logs
        deadline = time.monotonic() + 10
        while (left := await asyncio.to_thread(_close_wait, {published})) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # kernel state: bounded poll
        # The watch's checks left no CLOSE_WAIT where they connect (socat's port). Behind socat, the
        # Gateway's own port holds what the leak fault keeps by design: socat's side, not the watch's.
        assert left == 0
    finally:
        if not task.done():
            dog.stop()
            await task
        container.remove(force=True)
    rows = [json.loads(line) for line in evidence.getvalue().splitlines()]
    states = [r["state"] for r in rows if r["kind"] == "probe"]
    actions = [r for r in rows if r["kind"] == "action"]
    episode = dog.episodes[0]
    assert "healthy" in states and states.index("healthy") < states.index("wedged"), states
    assert len(actions) == 1 and actions[0]["ok"] and actions[0]["reply"] == "OK Restart in progress"
    assert episode["first_state"] == "wedged" and episode["healed_by_restart"]
    assert episode["restarts"] and rows[-1]["kind"] in ("probe", "episode")
    assert states[-1] == "healthy"


@pytest.mark.docker
def test_health_check_sidecar_shares_the_gateway_namespace_and_names_the_state(docker_engine):
    """The sidecar form for an image without python3: a python3 image in the
    Gateway container's network namespace (compose `network_mode: service:`,
    a k8s pod) runs the stdlib check against socat's 4004 on loopback."""
    mounts = {str(ROOT / "harness" / "mock"): {"bind": "/opt/ibgw/harness/mock", "mode": "ro"},
              str(ROOT / "harness" / "protocol"): {"bind": "/opt/ibgw/harness/protocol", "mode": "ro"},
              str(ROOT / "harness" / "core"): {"bind": "/opt/ibgw/harness/core", "mode": "ro"}}
    gateway = docker_engine.containers.run(
        STANDIN_IMAGE, detach=True, network_mode="none", labels=run_labels(), volumes=mounts,
        environment={"TWS_USERID": "standin-user", "TWS_PASSWORD": "s3cret-standin", "IBGW_LOGIN_DELAY": "4"})
    sidecar = None
    try:
        sidecar = docker_engine.containers.run(
            "ibgw-mock:10.45", ["python3", "-c", "import time; time.sleep(300)"], detach=True,
            network_mode=f"container:{gateway.id}", labels=run_labels(), volumes=mounts)
        check = ["python3", "-m", "harness.mock.healthcheck", "--states", "--port", "4004", "--timeout", "3",
                 "--client-id", "998"]
        code, out = sidecar.exec_run(check)
        assert (code, out.decode().split(":")[0]) == (3, "starting"), out  # socat up, Gateway logging in
        deadline = time.monotonic() + 60
        while code != 0 and time.monotonic() < deadline:
            time.sleep(0.5)  # the login has no event a sidecar could await: bounded poll
            code, out = sidecar.exec_run(check)
        assert code == 0 and out.decode().startswith("healthy: server version"), out
    finally:
        for container in (sidecar, gateway):
            if container is not None:
                container.remove(force=True)
