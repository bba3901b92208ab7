"""SIGINT/SIGTERM as cancellation of the running command.

Why: an on-call command interrupted mid-handshake must still close its
sockets and print what it saw. Turning the signal into a task cancellation
lets the command's own finally blocks do that, then exit 130 / 143 with no
traceback. One helper, shared by every command that talks to a Gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import time
from collections.abc import Callable
from types import TracebackType

import psutil

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CancelOnSignal:
    """Context manager for use inside a running event loop's task.

    Handlers go on the loop (add_signal_handler), not through Python's
    default SIGINT handler: a command started in the background by a script
    (`cmd &`) inherits SIGINT as ignored, and then asyncio.run never turns
    Ctrl-C into KeyboardInterrupt; a loop handler still fires.

    on_signal runs once, on the loop, before the task is cancelled: for what
    must stop at once rather than in the task's finally blocks (child
    processes that would otherwise finish their current request first).
    """

    def __init__(self, on_signal: Callable[[], object] | None = None) -> None:
        self.caught: int | None = None
        self._on_signal_hook = on_signal
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None, "CancelOnSignal must be used inside a task"
        self._task = task

    def _on_signal(self, signum: int) -> None:
        if self.caught is None:
            self.caught = signum
            if self._on_signal_hook is not None:
                self._on_signal_hook()
            self._task.cancel()

    def __enter__(self) -> CancelOnSignal:
        for signum in _SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(signum, self._on_signal, signum)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for signum in _SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.remove_signal_handler(signum)

    def absorb(self) -> bool:
        """Call from `except CancelledError`: True (and the cancellation
        undone) when a signal caused it, False when the caller must re-raise."""
        if self.caught is None:
            return False
        self._task.uncancel()
        return True

    @property
    def name(self) -> str:
        return signal.Signals(self.caught).name if self.caught is not None else ""

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.caught == signal.SIGINT else EXIT_TERMINATED


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
