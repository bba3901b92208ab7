"""Several Docker engines: which ones a run may start containers on, and
which engine runs which version-matrix row.

    pytest --docker-host unix:///run/a.sock --docker-host ssh://root@host:2222 ...
    IBGW_DOCKER_HOSTS=unix:///run/a.sock,tcp://build-2:2376 make report GATEWAY=docker

Why docker-py's own URLs and nothing more: a team already reaches its
engines that way (DOCKER_HOST, `docker context`): unix sockets, tcp:// with
TLS (DOCKER_TLS_VERIFY / DOCKER_CERT_PATH apply to every tcp engine), and
ssh:// through docker-py's SSH support (paramiko; the remote runs
`docker system dial-stdio`). No scheduler of our own: each row goes to one
engine, round robin in the matrix's order.

The harness talks to a container's Gateway on 127.0.0.1 (host networking),
so an engine must share this machine's loopback: local sockets, or ssh:// /
tcp:// to this same host. An engine on another machine is not supported yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from ..core.config import env as config_env
from .base import TargetSpecError

ENV = "IBGW_DOCKER_HOSTS"
SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://")
T = TypeVar("T")


def parse_hosts(values: Iterable[str], *, source: str = "--docker-host") -> tuple[str, ...]:
    """Engine URLs, each checked for a scheme docker-py knows; duplicates
    dropped (one engine twice would run two rows where one was meant).
    TargetSpecError (one line, with a hint) for a value that is not a URL."""
    hosts: list[str] = []
    for value in values:
        for url in (part.strip() for part in value.split(",")):
            if not url:
                continue
            if not url.startswith(SCHEMES) or url.endswith("://"):
                raise TargetSpecError(f"{source} {url!r} is not a Docker engine URL; hint: "
                                      "unix:///var/run/docker.sock, tcp://HOST:2376 (TLS from "
                                      "DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) or ssh://USER@HOST[:PORT]")
            if url not in hosts:
                hosts.append(url)
    return tuple(hosts)


def hosts_from_env() -> tuple[str, ...]:
    """IBGW_DOCKER_HOSTS: a comma-separated list of engine URLs (empty: the local engine)."""
    return parse_hosts([config_env(ENV)], source=ENV)


def choose_hosts(option: Sequence[str] | None) -> tuple[str, ...]:
    """--docker-host values when given, else IBGW_DOCKER_HOSTS; () is the local engine alone."""
    return parse_hosts(option) if option else hosts_from_env()


def spread(items: Sequence[T], hosts: Sequence[str]) -> list[tuple[T, str | None]]:
    """Each item with the one engine it runs on, round robin (None: the local engine)."""
    if not hosts:
        return [(item, None) for item in items]
    return [(item, hosts[i % len(hosts)]) for i, item in enumerate(items)]


__all__ = ["ENV", "choose_hosts", "hosts_from_env", "parse_hosts", "spread"]
