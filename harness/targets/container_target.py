"""A Gateway in a container, started through docker-py (`--gateway docker:IMAGE[:TAG]`).

Why docker-py and not the CLI: the target must label, inspect, exec into and
remove containers from a test process with real error types, and the
project settled on docker-py as its engine client.

Networking: host networking by default (tests and CI: every socket stays on
127.0.0.1 and the port is picked free per container so runs never collide),
or a port mapping bound to 127.0.0.1 for real images whose ports are fixed
(network="ports"). Never a bridge address the tests talk to.

Images built by this project say what they are through labels
(`ibgw.kind` = mock | standin, `ibgw.profile`, `ibgw.max-server-version`);
an unlabelled image is taken for a real gnzsnz-shaped Gateway (socat on
4004 for paper).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from ..core.config import env as config_env
from ..core.errors import HarnessError
from ..core.net import free_port  # a port the engine binds a moment later
from ..core.notices import notice
from ..core.redact import redact_text
from ..core.wait import poll_until
from ..mock.healthcheck import Readiness, check_api_ready
from .base import TARGET_CONTAINER, BaseTarget, Endpoint, TargetSpecError
from .docker_engine import (
    EngineUnavailable,
    engine,
    engine_url,
    install_cleanup,
    remove_container,
    run_labels,
    sweep_orphans,
)
from .proc_net import count_state, parse_proc_net_tcp

KIND_MOCK, KIND_STANDIN, KIND_GATEWAY = "mock", "standin", "gateway"
NOFILE = 10000  # extrange's README asks for it; a Gateway under churn runs out of descriptors
POLL_S = 0.25  # readiness polling interval (engine and socket state have no event to await)
PROGRESS_EVERY_S = 5.0
LOG_TAIL = 200
IBC_BUILD = re.compile(r"Starting Gateway version (\S+)")
# How long a container may take to become API-ready. A real Gateway logs in
# through IBC (seed, login dialog, 30-60 s login, 2FA): manhinhang's CI gives
# it 120 s, so a real image gets 180 s; the mock and stand-in are up in seconds.
READY_TIMEOUT_ENV = "IBGW_READY_TIMEOUT"
READY_TIMEOUT_S = {KIND_MOCK: 60.0, KIND_STANDIN: 60.0, KIND_GATEWAY: 180.0}


class ContainerNotReady(HarnessError, RuntimeError):
    """The container did not become API-ready; carries its log tail."""

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message)
        self.logs = logs


def split_image(ref: str) -> tuple[str, str]:
    """'repo/name:tag' -> ('repo/name', 'tag'); a registry port is not a tag."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def ready_timeout_from_env() -> float | None:
    """IBGW_READY_TIMEOUT in seconds, None when unset; a bad value is a
    TargetSpecError (a usage error before anything starts)."""
    text = config_env(READY_TIMEOUT_ENV)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 1.0 <= value <= 3600.0:
        raise TargetSpecError(f"{READY_TIMEOUT_ENV}={text!r} is not a number of seconds in 1..3600; "
                              f"hint: e.g. {READY_TIMEOUT_ENV}=300 for a Gateway that waits for 2FA")
    return value


def require_image(client: Any, ref: str) -> Any:
    """The image `ref` on this engine, or EngineUnavailable with the fix.

    Checked before a run as well as at start: a missing image is a
    configuration error to report in one line, not a test set-up error
    repeated with a traceback for every test."""
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        raise EngineUnavailable(f"image {ref} is not on this engine: build it (make images, or "
                                f".ci/provision-docker) or pull it") from None


class ContainerTarget(BaseTarget):
    kind = TARGET_CONTAINER

    def __init__(self, image: str, *, network: str = "host", env: dict[str, str] | None = None,
                 ready_timeout: float | None = None, login_delay: float | None = None, progress: bool = True,
                 docker_host: str | None = None) -> None:
        if network not in ("host", "ports"):
            raise ValueError(f"network {network!r} is not 'host' or 'ports'")
        self.repo, self.tag = split_image(image)
        self.image = f"{self.repo}:{self.tag}"
        self.network = network
        self.env = dict(env or {})
        # None: IBGW_READY_TIMEOUT, else READY_TIMEOUT_S for the image's kind (known once it is inspected).
        self.ready_timeout = ready_timeout if ready_timeout is not None else ready_timeout_from_env()
        self.login_delay = login_delay
        self.progress = progress
        self.docker_host = docker_host  # the engine's URL (--docker-host); None: the local engine
        self.container: Any = None
        self.kind_of_image = KIND_GATEWAY
        self.port = 0  # where clients connect (socat's port for a gnzsnz-shaped image)
        self.gateway_port = 0  # where the Gateway itself listens inside (its CLOSE_WAIT sockets live there)
        self.command_port = 0
        self.image_labels: dict[str, str] = {}
        self.image_env: dict[str, str] = {}
        self.endpoint: Endpoint | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> Endpoint:
        client = await asyncio.to_thread(engine, self.docker_host)  # EngineUnavailable: one line with the fix
        install_cleanup()
        await asyncio.to_thread(sweep_orphans, client)
        image = await asyncio.to_thread(self._image, client)
        kwargs = self._run_kwargs(image)
        self.container = await asyncio.to_thread(client.containers.run, self.image, **kwargs)
        readiness = await self.wait_ready()
        build = await asyncio.to_thread(self.gateway_build)
        details: dict[str, Any] = {
            "image": self.image, "container": self.container.short_id, "network": self.network,
            "image_kind": self.kind_of_image, "readiness": readiness.detail,
            "engine": engine_url(self.docker_host),
        }
        if "ibgw.max-server-version" in self.image_labels:
            details["max_server_version"] = int(self.image_labels["ibgw.max-server-version"])
        if self.gateway_port != self.port:
            details["gateway_port"] = self.gateway_port
        self.endpoint = Endpoint(kind=self.kind, host="127.0.0.1", port=self.port, label=f"docker:{self.image}",
                                 build=build, profile=self.image_labels.get("ibgw.profile"), details=details)
        return self.endpoint

    def _image(self, client: Any) -> Any:
        image = require_image(client, self.image)
        self.image_labels = dict(image.labels or {})
        self.image_env = dict(e.split("=", 1) for e in image.attrs.get("Config", {}).get("Env") or [] if "=" in e)
        self.kind_of_image = self.image_labels.get("ibgw.kind", KIND_GATEWAY)
        if self.ready_timeout is None:
            self.ready_timeout = READY_TIMEOUT_S.get(self.kind_of_image, READY_TIMEOUT_S[KIND_GATEWAY])
        return image

    def _run_kwargs(self, image: Any) -> dict[str, Any]:
        import docker.types

        env = dict(self.env)
        if self.kind_of_image == KIND_MOCK:
            self.port = self.gateway_port = free_port() if self.network == "host" else 4002
            env.setdefault("IBGW_MOCK_PORT", str(self.gateway_port))
            env.setdefault("IBGW_MOCK_HOST", "127.0.0.1" if self.network == "host" else "0.0.0.0")
        elif self.kind_of_image == KIND_STANDIN and self.network == "host":
            self.port, self.gateway_port, self.command_port = free_port(), free_port(), free_port()
            env.setdefault("IBGW_STANDIN_PORT", str(self.port))
            env.setdefault("IBGW_STANDIN_API_PORT", str(self.gateway_port))
            env.setdefault("IBGW_STANDIN_COMMAND_PORT", str(self.command_port))
            env.setdefault("IBGW_STANDIN_BIND", "127.0.0.1")  # host networking: loopback only
        else:  # a real gnzsnz-shaped image: socat publishes 4004 (paper), the Gateway listens on 4002
            live = env.get("TRADING_MODE", self.image_env.get("TRADING_MODE", "paper")) == "live"
            self.port, self.gateway_port = (4003, 4001) if live else (4004, 4002)
            if self.kind_of_image == KIND_STANDIN:
                env.setdefault("IBGW_STANDIN_BIND", "0.0.0.0")  # inside its own namespace, behind the mapping
        if self.login_delay is not None:
            env.setdefault("IBGW_LOGIN_DELAY", f"{self.login_delay:g}")
        kwargs: dict[str, Any] = {
            "detach": True, "environment": env, "labels": run_labels(),
            "ulimits": [docker.types.Ulimit(name="nofile", soft=NOFILE, hard=NOFILE)],
        }
        if self.network == "host":
            kwargs["network_mode"] = "host"
        else:  # users: a loopback-bound mapping, never a published address beyond this host
            inside = self.port
            self.port = free_port()
            kwargs["ports"] = {f"{inside}/tcp": ("127.0.0.1", self.port)}
        return kwargs

    async def wait_ready(self, timeout: float | None = None) -> Readiness:
        """Poll an API-level handshake until ready, printing a progress line
        every few seconds; raise ContainerNotReady with the log tail."""
        timeout = (self.ready_timeout or READY_TIMEOUT_S[KIND_GATEWAY]) if timeout is None else timeout
        started = time.monotonic()
        deadline = started + timeout
        next_progress = started + PROGRESS_EVERY_S
        last = Readiness(False, "tcp", "not tried yet")
        while True:
            status = await asyncio.to_thread(self._status)
            if status not in ("created", "running", "restarting"):
                raise ContainerNotReady(f"container {self.image} {status} before it was API-ready "
                                        f"(last check: {last.detail})", await asyncio.to_thread(self.logs))
            last = await check_api_ready("127.0.0.1", self.port, timeout=min(3.0, max(0.5, deadline - time.monotonic())))
            if last.ready:
                return last
            now = time.monotonic()
            if now >= deadline:
                raise ContainerNotReady(f"container {self.image} not API-ready within {timeout:g} s "
                                        f"(last check: {last.detail}); hint: a slow login needs more time "
                                        f"({READY_TIMEOUT_ENV}=SECONDS), a failed one shows in the log tail",
                                        await asyncio.to_thread(self.logs))
            if self.progress and now >= next_progress:
                notice(f"ibgw: waiting for {self.image} to be API-ready: {now - started:.0f} s of {timeout:g} s "
                       f"({last.detail})")
                next_progress = now + PROGRESS_EVERY_S
            await asyncio.sleep(POLL_S)  # bounded polling: a login has no event we could await

    def _status(self) -> str:
        self.container.reload()
        return str(self.container.status)

    async def restart(self, *, cold: bool = True) -> Readiness:
        """cold: `docker restart` (the process and its login start over);
        otherwise IBC's RESTART on the command server (stand-in only)."""
        if cold or not self.command_port:
            await asyncio.to_thread(self.container.restart, timeout=5)
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.command_port)
            writer.write(b"RESTART\n")
            reply = await asyncio.wait_for(reader.readline(), 10)
            writer.close()
            if not reply.startswith(b"OK"):
                raise ContainerNotReady(f"command server refused RESTART: {reply!r}")
            await self._wait_gateway_down()
        return await self.wait_ready()

    async def _wait_gateway_down(self, timeout: float = 10.0) -> None:
        """After RESTART the old Gateway must be gone before readiness means anything."""
        async def down() -> bool:
            return not (await check_api_ready("127.0.0.1", self.port, timeout=1.0)).ready

        # bounded polling: the restart has no event we could await; still up at the end is left to wait_ready
        await poll_until(down, timeout=timeout, interval=POLL_S, raise_on_timeout=False)

    async def stop(self) -> None:
        """Remove the container; already gone (a signal handler or a sweep got there first) is fine."""
        container, self.container = self.container, None
        if container is not None:
            await asyncio.to_thread(remove_container, container)

    # ------------------------------------------------------------ evidence

    def logs(self, tail: int = LOG_TAIL) -> str:
        """The container's log tail, redacted (it may name accounts)."""
        if self.container is None:
            return ""
        try:
            raw = self.container.logs(tail=tail).decode("utf-8", "replace")
        except Exception as exc:  # noqa: BLE001 - logs are evidence, their absence must not hide the failure
            return f"(logs unavailable: {exc})"
        return redact_text(raw)

    def gateway_build(self) -> str:
        """The Gateway build: IB_GATEWAY_VERSION in the image's env, else IBC's log line."""
        if self.image_env.get("IB_GATEWAY_VERSION"):
            return self.image_env["IB_GATEWAY_VERSION"]
        match = IBC_BUILD.search(self.logs(1000))
        return match.group(1) if match else "unknown"

    def close_wait_count(self, port: int | None = None) -> int:
        """CLOSE_WAIT sockets on the Gateway's own port inside the container."""
        return container_close_wait(self.container, port or self.gateway_port)


def read_tcp_table(container: Any) -> str:
    """/proc/net/tcp and tcp6 as a container's network namespace sees them
    (through exec: Gateway images ship no ss; `cat` exists in all of them)."""
    code, output = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"], demux=False)
    if code not in (0, 1):  # 1: tcp6 absent (IPv6 disabled); tcp was still printed
        raise RuntimeError(f"reading /proc/net/tcp in container {container.short_id} failed with exit {code}")
    return output.decode("ascii", "replace")


def container_close_wait(container: Any, port: int) -> int:
    """CLOSE_WAIT sockets on a local port in the container's network namespace."""
    return count_state(parse_proc_net_tcp(read_tcp_table(container)), port)
