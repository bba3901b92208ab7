"""At most one nested suite run per core at a time, across pytest-xdist workers.

Why: `make test` runs more xdist workers than cores (most of the suite waits
on sockets, timeouts and child processes; tests/support/balance.py), but a
nested pytest over the suites (test_report's runs, the xdist report slice,
`make report`, the planted-id run, the isolated worker's suites) is CPU
work plus timeouts that assume a core: side by side, four of them on two
cores made the matrix's healthy cells time out. So those runs take a slot
first: a lock file per slot, shared by the workers of this run only
(xdist's PYTEST_XDIST_TESTRUNUID), one slot per core. Outside xdist there
is nothing to share and the slot is free.

A worker waiting for a slot blocks in flock (an event from the kernel, no
polling), and the slot is released when its holder exits, however it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO


def slot_count() -> int:
    """One slot per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _slot_files() -> list[Path] | None:
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run_id:
        return None
    base = Path(tempfile.gettempdir()) / f"ibgw-test-slots-{os.getuid()}-{run_id}"
    base.mkdir(exist_ok=True)
    return [base / f"slot-{i}.lock" for i in range(slot_count())]


def _acquire(paths: list[Path]) -> IO[bytes]:
    """A free slot at once if there is one; else wait on this worker's own slot (by worker number)."""
    for path in paths:
        handle = path.open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            handle.close()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int(worker[2:]) if worker[2:].isdigit() else 0
    handle = paths[number % len(paths)].open("ab")
    fcntl.flock(handle, fcntl.LOCK_EX)  # blocks until that slot's holder is done
    return handle


@contextlib.contextmanager
def nested_run_slot() -> Iterator[None]:
    """Hold a slot for the duration of a nested suite run (no-op outside xdist)."""
    paths = _slot_files()
    if paths is None:
        yield
        return
    handle = _acquire(paths)
    try:
        yield
    finally:
        handle.close()  # closing the file releases the lock


@contextlib.asynccontextmanager
async def async_nested_run_slot() -> AsyncIterator[None]:
    """nested_run_slot() from an async test: the wait happens off the event loop."""
    paths = _slot_files()
    if paths is None:
        yield
        return
    handle = await asyncio.to_thread(_acquire, paths)
    try:
        yield
    finally:
        handle.close()


__all__ = ["async_nested_run_slot", "nested_run_slot", "slot_count"]
