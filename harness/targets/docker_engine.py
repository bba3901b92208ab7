"""The Docker engine as the harness uses it: connect with a one-line error,
label every container with the run that owns it, and remove them all at
the end, on SIGINT/SIGTERM, and (for a SIGKILLed run) at the next start.

Why labels rather than remembered ids: a SIGKILLed process remembers
nothing. The labels carry the owning process id and its start time, so the
next run can tell a dead owner from a live one (even after pid reuse) and
never touches containers of another run that is still going.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import threading
import uuid
from typing import Any

import psutil

from ..core.config import env as config_env
from ..core.config import foreign_env
from ..core.errors import HarnessError
from ..core.notices import notice
from ..extras import MissingExtra

LABEL = "ibgw.harness"
LABEL_RUN = "ibgw.run"
LABEL_PID = "ibgw.pid"
LABEL_PID_START = "ibgw.pid-start"
LABEL_HOST = "ibgw.host"

RUN_ID = config_env("IBGW_RUN_ID") or uuid.uuid4().hex[:12]
ENGINE_FIX = "start Docker (or run .ci/provision-docker), set DOCKER_HOST to a running engine, or use --gateway mock"


class EngineUnavailable(HarnessError, RuntimeError):
    """No Docker engine answers; the message is one line with the fix."""


def _process_start(pid: int) -> str:
    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except psutil.Error:
        return ""


def run_labels() -> dict[str, str]:
    """Labels naming this run and its owning process (pid plus start time)."""
    pid = os.getpid()
    return {LABEL: "1", LABEL_RUN: RUN_ID, LABEL_PID: str(pid), LABEL_PID_START: _process_start(pid),
            LABEL_HOST: socket.gethostname()}


_client: Any = None  # the local engine's client (DOCKER_HOST, else the default socket)
_clients: dict[str, Any] = {}  # every engine this process reached, by URL ("" for the local one)
_lock = threading.Lock()


def engine_url(url: str | None = None) -> str:
    """The engine a URL names, as evidence and messages show it: the URL,
    or DOCKER_HOST / the default socket for the local engine."""
    return url or foreign_env("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _connect(url: str | None, timeout: int) -> Any:
    import docker

    # from_env with DOCKER_HOST swapped: DOCKER_TLS_VERIFY / DOCKER_CERT_PATH still apply
    # to a tcp:// engine, and ssh:// goes through docker-py's SSH support (paramiko).
    environment = dict(os.environ, DOCKER_HOST=url) if url else None
    kwargs = docker.utils.kwargs_from_env(environment=environment)
    tls = kwargs.get("tls")
    if not (tls and isinstance(getattr(tls, "ca_cert", None), str)
            and (foreign_env("REQUESTS_CA_BUNDLE") or foreign_env("CURL_CA_BUNDLE"))):
        return docker.from_env(timeout=timeout, environment=environment)
    # The engine's CA (DOCKER_CERT_PATH/ca.pem) must decide, but requests lets
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace a session's CA bundle
    # (psf/requests#4726, #3829): with either set (CI images often set them), a
    # tcp:// engine with its own CA fails verification. Its sessions read no
    # environment then (no proxy variables either: an engine is reached
    # directly), including the API-version query docker-py would make on its own.
    probe = docker.APIClient(version=docker.constants.MINIMUM_DOCKER_API_VERSION, timeout=timeout, **kwargs)
    probe.trust_env = False
    try:
        version = str(probe.version(api_version=False)["ApiVersion"])
    finally:
        probe.close()
    client = docker.DockerClient(version=version, timeout=timeout, **kwargs)
    client.api.trust_env = False
    return client


def engine(url: str | None = None) -> Any:
    """A docker-py client that has answered a ping, or EngineUnavailable.

    url: unix://, tcp:// (TLS from DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) or
    ssh://USER@HOST[:PORT]; None is the local engine (DOCKER_HOST)."""
    global _client
    with _lock:
        key = url or ""
        if key in _clients:
            return _clients[key]
        try:
            import docker  # noqa: F401
        except ImportError:  # the [docker] extra is not installed
            raise EngineUnavailable(f"{MissingExtra('docker')}; or use --gateway mock") from None
        try:
            client = _connect(url, 30)
            client.ping()
        except Exception as exc:  # noqa: BLE001 - docker-py raises many kinds for "no engine"
            reason = _why(exc)
            raise EngineUnavailable(f"no Docker engine at {engine_url(url)} ({reason}): {ENGINE_FIX}") from None
        _clients[key] = client
        if not url:
            _client = client
        return client


def forget_engine(url: str | None) -> None:
    """Close and forget an engine's client (one that went away, or a test's
    engine it stopped): the end-of-run clean-up then does not knock on it."""
    with _lock:
        client = _clients.pop(url or "", None)
    if client is not None:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing a dead engine's pool must not raise
            pass


def engine_alive(url: str | None = None, timeout: int = 5) -> bool:
    """Whether the engine answers a ping now, on a fresh connection (a
    cached client's pool would not notice an engine that went away)."""
    try:
        client = _connect(url, timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure to ping is "not alive"
        return False


def _why(exc: Exception) -> str:
    """docker-py's connection errors, in a few words."""
    text = str(exc)
    for marker, words in (("FileNotFoundError", "no engine socket there"), ("ConnectionRefused", "connection refused"),
                          ("No such file or directory", "no engine socket there"),
                          ("Connection refused", "connection refused"), ("CERTIFICATE_VERIFY_FAILED",
                                                                          "TLS verification failed"),
                          ("PermissionError", "permission denied on the engine socket"),
                          ("timed out", "the engine did not answer in time")):
        if marker in text:
            return words
    return (text.splitlines()[0].replace("Error while fetching server API version: ", "")[:140] if text
            else type(exc).__name__)


def engine_available(url: str | None = None) -> tuple[bool, str]:
    """(True, "") or (False, the one-line reason): for skip decisions."""
    try:
        engine(url)
    except EngineUnavailable as exc:
        return False, str(exc)
    return True, ""


def _owner_alive(labels: dict[str, str]) -> bool:
    if labels.get(LABEL_HOST) not in (None, socket.gethostname()):
        return True  # another host's run: not ours to judge
    try:
        pid = int(labels.get(LABEL_PID, ""))
    except ValueError:
        return False
    if not psutil.pid_exists(pid):
        return False
    started = labels.get(LABEL_PID_START, "")
    return not started or _process_start(pid) == started


def sweep_orphans(client: Any = None) -> list[str]:
    """Remove containers left by earlier runs whose owning process is gone
    (a SIGKILLed run cannot clean up after itself), on one engine (default:
    the local one). Returns their names."""
    client = client if client is not None else engine()
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        labels = container.labels or {}
        if labels.get(LABEL_RUN) == RUN_ID or _owner_alive(labels):
            continue
        remove_container(container)
        removed.append(container.name)
    if removed:
        notice(f"ibgw: removed {len(removed)} container(s) left by dead runs: {', '.join(removed)}")
    return removed


def remove_run_containers(run_id: str = RUN_ID) -> int:
    """Remove every container of a run (the end of a session, a signal), on
    every engine this process reached; an engine that went away is skipped."""
    if not _clients:
        return 0  # this process never reached an engine: it started nothing
    count = 0
    for url, client in list(_clients.items()):
        try:
            for container in client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}):
                remove_container(container)
                count += 1
        except Exception as exc:  # noqa: BLE001 - clean-up must not mask the original failure
            notice(f"ibgw: could not remove this run's containers on {engine_url(url)}: {_why(exc)}")
    return count


def remove_container(container: Any) -> None:
    """Remove a container, force; one already gone (removed by the signal
    handler, another run's sweep, `docker rm`) or being removed is not an
    error: clean-up that raises here would replace the KeyboardInterrupt a
    Ctrl-C is unwinding with NotFound, and the session would carry on."""
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409 or "already in progress" not in str(exc):  # 409: a removal is under way
            raise


_installed = False
_interrupted: int | None = None


def interrupted() -> int | None:
    """The signal (SIGINT/SIGTERM) that removed this run's containers, if
    one did: the run must end (exit 2) whatever a test's clean-up raised."""
    return _interrupted


def install_cleanup() -> None:
    """Remove this run's containers at exit and on SIGINT/SIGTERM (then let
    the previous handler act: KeyboardInterrupt, or exit 128+signal)."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(remove_run_containers)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)

        def handler(num: int, frame: Any, previous: Any = previous) -> None:
            global _interrupted
            _interrupted = num
            remove_run_containers()
            if callable(previous):
                previous(num, frame)
            elif previous != signal.SIG_IGN:
                raise SystemExit(128 + num)

        signal.signal(signum, handler)
