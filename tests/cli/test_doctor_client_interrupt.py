"""Ctrl-C during `ibgw doctor --client module:factory` stops it at once.

The comparison runs the user's adapter, here the isolated worker (a child
process that answers one request at a time), against a Gateway that accepts
and never answers. SIGINT arrives while the worker is mid-connect, the
moment a clean shutdown request would wait longest. The command must exit
130 within a bound, print the one interrupted line (no traceback, no
verdict), leave no child process, and leave no connection open on the
Gateway's port.

Two ways SIGINT reaches a process: inherited as default (a terminal, a
supervisor), and inherited as ignored (a script's `cmd &`), where Python
never raises KeyboardInterrupt and only a loop signal handler fires. The
second is how the defect was first reported.

The mock Gateway runs on the test's own event loop, so its connection
records are read directly. Progress of another process has no event to
await, so the waits for it are bounded polls (as in test_interrupt_cleanup).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from harness.mock import MockGateway
from tests.support.processes import Started, child_env

IBGW = str(Path(sys.executable).with_name("ibgw"))
ADAPTER = "examples.isolated_worker.adapter:factory"
WORKER = "isolated_worker/worker.py"
TIMEOUT = "5"  # per handshake: the account check takes this long before the worker starts
START_DEADLINE = 60.0  # account check + worker start-up (a fresh interpreter importing ib_async)
EXIT_BOUND = 3.0  # SIGINT -> exit: "within a second or two", plus a slow CI box's slack
CLOSE_DEADLINE = 5.0
# exec keeps the pid, so the test signals doctor itself, with SIGINT ignored as `cmd &` leaves it.
IGNORE_SIGINT = ["-c", ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                        "os.execv(sys.argv[1], sys.argv[1:])")]


async def _poll(condition: Callable[[], bool], deadline: float) -> bool:
    """Bounded polling of another process's progress: no event crosses processes."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.05)
    return True


def _workers(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for child in children:
        try:
            if any(WORKER in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["sigint-default", "sigint-ignored-as-background"])
async def test_ctrl_c_stops_doctor_client_and_its_worker(sigint_ignored: bool) -> None:
    async with MockGateway(port=0, faults=["silent-handshake"]) as gw:
        args = [IBGW, "doctor", "--port", str(gw.port), "--timeout", TIMEOUT, "--client", ADAPTER]
        if sigint_ignored:
            args = [sys.executable, *IGNORE_SIGINT, *args]
        child = Started(args, env=child_env(), timeout=EXIT_BOUND + 10, merge_stderr=False)
        try:
            # Started: the account check's connection came and went, the worker
            # is running and its own connection is open on the Gateway.
            def worker_connected() -> bool:
                records = list(gw.records)
                return (len(records) >= 2 and records[-1].closed_at is None and bool(_workers(child.pid))
                        and child.proc.poll() is None)

            assert await _poll(worker_connected, START_DEADLINE), "the worker never connected to the Gateway"
            workers = _workers(child.pid)
            child.send_signal(signal.SIGINT)
            sent = time.monotonic()
            proc = await asyncio.to_thread(child.result)  # the Gateway on this loop keeps serving meanwhile
            took = time.monotonic() - sent
        finally:
            await asyncio.to_thread(child.kill)  # a no-op once it has exited
        stdout, stderr = proc.stdout, proc.stderr
        assert proc.returncode == 130, (stdout, stderr)
        assert took < EXIT_BOUND, f"exit took {took:.1f} s after SIGINT"
        assert stderr.strip().splitlines()[-1] == "INTERRUPTED: connections closed", stderr
        assert "Traceback" not in stderr and "Verdict" not in stdout, (stdout, stderr)

        assert await _poll(lambda: not any(_alive(w) for w in workers), CLOSE_DEADLINE), \
            f"worker still running: {[w.pid for w in workers if _alive(w)]}"
        assert await _poll(lambda: gw.active_connections == 0, CLOSE_DEADLINE), \
            f"{gw.active_connections} connection(s) still open on the Gateway port"
        assert all(record.closed_at is not None for record in gw.records)
