"""The host name, before any TCP is tried (probe and compare share it).

Why apart from the ladder: a name that does not resolve is its own cause with its own fix, and
the lookup must be bounded even when the resolver hangs."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from dataclasses import dataclass

FIX_HOST_NAME = "check the host name"
RESOLVE_TIMEOUT_S = 5.0  # most a name lookup may take, whatever --timeout is


# ---------------------------------------------------------------- the host name (probe shares it)


@dataclass(frozen=True)
class HostProblem:
    """Why a host name cannot be connected to before any TCP is tried.

    Why its own cause: a name that does not resolve fails the TCP connect
    with "[Errno -2] Name or service not known", which every tcp_connect
    message would otherwise explain as "nothing is listening"; the fix is
    the name, not the Gateway."""

    cause: str  # "cannot resolve host NAME"
    meaning: str  # what the resolver said
    hint: str = FIX_HOST_NAME


def host_port_in_host(host: str) -> tuple[str, str] | None:
    """(HOST, PORT) when --host was given as HOST:PORT (or [V6]:PORT), else
    None: a name, an IPv4 address or a bare IPv6 literal ('::1' is not
    HOST:PORT). Callers make it a usage error naming --host H --port P."""
    if ":" not in host:
        return None
    try:
        ipaddress.ip_address(host)
        return None  # a bare IPv6 literal (with or without a scope id)
    except ValueError:
        pass
    name, _, port = host.rpartition(":")
    if not port.isdigit() or not name:
        return None
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name, port


async def diagnose_host(host: str, timeout: float = RESOLVE_TIMEOUT_S) -> HostProblem | None:
    """None when `host` resolves; otherwise why not (a HostProblem).

    The lookup runs in a daemon thread bounded by `timeout` (at most
    RESOLVE_TIMEOUT_S): a resolver that hangs must not hold the command,
    and an abandoned daemon thread, unlike the default executor's, does not
    hold the interpreter's exit either."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if answer.done():
            return
        if error is None:
            answer.set_result(None)
        else:
            answer.set_exception(error)

    def lookup() -> None:
        error: BaseException | None = None
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    limit = min(timeout, RESOLVE_TIMEOUT_S)
    try:
        async with asyncio.timeout(limit):
            await answer
    except TimeoutError:
        return HostProblem(f"cannot resolve host {host}", f"the resolver did not answer within {limit:g} s",
                           f"{FIX_HOST_NAME} and this host's DNS settings")
    except socket.gaierror as exc:
        return HostProblem(f"cannot resolve host {host}",
                           f"no address for that name here ({exc.strerror or exc}): a typo, or a name only "
                           "another host or network knows")
    except (OSError, UnicodeError) as exc:
        return HostProblem(f"cannot resolve host {host}", f"not a usable host name ({exc})")
    return None
