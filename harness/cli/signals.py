"""What an interrupted command does with the processes it started (psutil).

The signal handling itself (CancelOnSignal: SIGINT/SIGTERM as cancellation of
the running command, exit 130 / 143 with no traceback; on_stop_signals for
servers) is stdlib-only and lives in harness/core/signals.py, shared by every
place that handles signals; the commands import it from there.
"""

from __future__ import annotations

import contextlib
import os
import select
import time

import psutil


def terminate_children() -> list[psutil.Process]:
    """SIGTERM every process this one started (recursively), without waiting.

    Why: a team's adapter (`doctor --client`) may run its connection in a
    worker process that answers one request at a time; asked to shut down
    mid-connect it would first finish the connect (up to the timeout). The
    worker's socket closes with it, so the Gateway sees an ordinary close.
    Returns the processes signalled, for stop_children to wait on.
    """
    try:
        children = psutil.Process(os.getpid()).children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    return children


def stop_children(grace: float = 2.0) -> list[int]:
    """Terminate this process's children, wait up to `grace` seconds for them
    to exit, SIGKILL the rest. Returns the pids that had to be killed.

    The last step before an interrupted command exits, so nothing it started
    outlives it whatever an adapter's own clean-up did."""
    children = terminate_children()
    alive = _wait_exited(children, grace)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    _wait_exited(alive, grace)
    return [child.pid for child in alive]


def _wait_exited(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait for processes to exit without reaping them; the ones still running.

    Not reaping matters: asyncio's child watcher may be waiting for the same
    child, and a stolen exit status makes it log a warning on stderr. A
    pidfd becomes readable on exit (an event, no polling); where there is no
    pidfd, psutil's bounded wait is the fallback."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return list(psutil.wait_procs(procs, timeout=timeout)[1])
    fds: dict[int, psutil.Process] = {}
    try:
        for proc in procs:
            with contextlib.suppress(OSError):  # already gone and reaped
                fds[pidfd_open(proc.pid)] = proc
        deadline = time.monotonic() + timeout
        waiting = set(fds)
        while waiting and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(list(waiting), [], [], left)
            waiting -= set(ready)
        return [fds[fd] for fd in waiting]
    finally:
        for fd in fds:
            os.close(fd)
