"""Signals, stdlib only: SIGINT/SIGTERM as task cancellation or a stop event.

Why: an on-call command interrupted mid-handshake must still close its
sockets and print what it saw, and a server (the mock, the proxy, the
stand-in) must stop cleanly on SIGTERM. Turning the signal into a task
cancellation or an event lets the code's own finally blocks do that, then
exit 130 / 143 with no traceback. One module for every place that handles
them (harness/cli/signals.py adds the psutil-based child clean-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from types import FrameType, TracebackType

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SIGNALS = STOP_SIGNALS


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


def on_stop_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[int], object]) -> None:
    """Call `callback(signum)` on the loop for SIGINT and SIGTERM (loop handlers:
    they fire even when a background start inherited SIGINT as ignored)."""
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, callback, signum)


def sigterm_as_interrupt() -> bool:
    """Make SIGTERM end a run the way Ctrl-C does (KeyboardInterrupt: the
    fixtures' teardown runs, started processes are stopped, evidence is
    kept). Python's default for SIGTERM is to die at once, skipping all of
    that. Only installs over the default handler, from the main thread."""
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False

        def interrupt(signum: int, frame: FrameType | None) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it outright
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} received at {time.strftime('%H:%M:%S')}")

        signal.signal(signal.SIGTERM, interrupt)
        return True
    except ValueError:  # not the main thread
        return False


__all__ = ["EXIT_INTERRUPTED", "EXIT_TERMINATED", "STOP_SIGNALS", "CancelOnSignal", "on_stop_signals",
           "sigterm_as_interrupt"]
