"""One bounded poll: `poll_until` / `wait_until`, and `wait_port` on top.

Why: some states have no event to await (the kernel's socket table, a
Gateway coming back after a restart, a mock's timer). Polling them is then
honest, but only bounded in time, at a modest interval, and with a cause
and a hint when the time runs out (testcontainers-python's wait strategy).
Hand-written loops drifted (no bound, a bare `sleep`, a silent give-up).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import HarnessError

T = TypeVar("T")
DEFAULT_INTERVAL = 0.05


class WaitTimeout(HarnessError, TimeoutError):
    """A bounded wait ran out; `.last` is the last value the check returned."""

    def __init__(self, what: str, timeout: float, hint: str = "", last: object = None) -> None:
        super().__init__(f"{what}: not within {timeout:g} s", hint=hint)
        self.last = last


async def poll_until(check: Callable[[], Any], *, timeout: float, what: str = "condition",
                     hint: str = "", interval: float = DEFAULT_INTERVAL, raise_on_timeout: bool = True) -> Any:
    """Call `check` (sync or async) until it returns something truthy; return that.

    Bounded by `timeout` seconds (checked at least once). On timeout: raise
    WaitTimeout(what, hint), or with raise_on_timeout=False return the last
    (falsy) value, for callers whose timeout is itself a finding."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))  # bounded: no event exists
    if not value and raise_on_timeout:
        raise WaitTimeout(what, timeout, hint, value)
    return value


def wait_until(check: Callable[[], T], *, timeout: float, what: str = "condition", hint: str = "",
               interval: float = DEFAULT_INTERVAL, raise_on_timeout: bool = True) -> T:
    """`poll_until` for synchronous code (tests, threads, subprocess watchers)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))  # bounded: no event exists
    if not value and raise_on_timeout:
        raise WaitTimeout(what, timeout, hint, value)
    return value


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connect to host:port succeeds now (the connection is closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def wait_port(host: str, port: int, *, timeout: float, hint: str = "",
                    interval: float = 0.1) -> None:
    """Wait until host:port accepts a TCP connection; WaitTimeout otherwise."""

    async def accepts() -> bool:
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=min(1.0, timeout))
        except (OSError, asyncio.TimeoutError):
            return False
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return True

    await poll_until(accepts, timeout=timeout, interval=interval, what=f"{host}:{port} accepting connections",
                     hint=hint or "is the process listening on that address? (see its log)")


def wait_port_sync(host: str, port: int, *, timeout: float, hint: str = "", interval: float = 0.1) -> None:
    """`wait_port` for synchronous code."""
    wait_until(lambda: port_open(host, port, timeout=min(1.0, timeout)), timeout=timeout, interval=interval,
               what=f"{host}:{port} accepting connections",
               hint=hint or "is the process listening on that address? (see its log)")


__all__ = ["WaitTimeout", "poll_until", "port_open", "wait_port", "wait_port_sync", "wait_until"]
