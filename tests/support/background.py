"""Expensive runs a module starts together and its tests collect one by one.

Why: a soak's clock is wall time; a module with four 10-30 s soaks that
each test runs in turn waits for their sum, though each run mostly sleeps.
A module-scoped fixture starts the runs its selected tests need side by side
(an in-process soak in a thread of its own with its own event loop; a child
process through tests.support.processes.Started) and each test asserts on
its own run's result: the module waits for the longest run, not the sum.
Every run is bounded by its own timeout and stopped at the module's end.
A module that uses this must stay one unit of work under xdist (not in
tests/support/balance.SPREAD): spread, every worker would start its runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

import pytest

T = TypeVar("T")


def selected_tests(request: pytest.FixtureRequest) -> set[str]:
    """Names of this run's selected tests in the requesting module (-k and friends applied)."""
    return {item.name for item in request.session.items if getattr(item, "module", None) is request.module}


class InThread(Generic[T]):
    """An async run (an in-process soak: its mock and clients on its own
    loop) started now in a daemon thread and collected with result()."""

    def __init__(self, run: Callable[[], Awaitable[T]], *, timeout: float, name: str = "background-run") -> None:
        self.timeout = timeout
        self._run = run
        self._future: Future[T] = Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[T] | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        async def bounded() -> T:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()  # type: ignore[assignment]
            return await asyncio.wait_for(self._run(), self.timeout)

        try:
            self._future.set_result(asyncio.run(bounded()))
        except BaseException as exc:  # noqa: BLE001 - handed to the test that collects it
            self._future.set_exception(exc)

    def result(self) -> T:
        """The run's result (or its exception), waited for up to its timeout plus a grace for teardown."""
        return self._future.result(self.timeout + 30)

    def close(self) -> None:
        """Cancel the run if it is still going (a test failed before collecting it) and wait for its end."""
        if self._loop is not None and self._task is not None and not self._future.done():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(self.timeout + 30)


__all__ = ["InThread", "selected_tests"]
