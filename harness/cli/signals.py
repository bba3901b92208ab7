"""SIGINT/SIGTERM as cancellation of the running command.

Why: an on-call command interrupted mid-handshake must still close its
sockets and print what it saw. Turning the signal into a task cancellation
lets the command's own finally blocks do that, then exit 130 / 143 with no
traceback. One helper, shared by every command that talks to a Gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from types import TracebackType

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CancelOnSignal:
    """Context manager for use inside a running event loop's task."""

    def __init__(self) -> None:
        self.caught: int | None = None
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None, "CancelOnSignal must be used inside a task"
        self._task = task

    def _on_signal(self, signum: int) -> None:
        if self.caught is None:
            self.caught = signum
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
