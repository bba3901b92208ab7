"""A pytest run for tests/plugin/test_interrupt_cleanup.py to interrupt.

Not collected by `pytest tests` (the name does not match test_*.py): the
interruption test runs this file in a child pytest, waits for the marker
file, then sends SIGINT, SIGTERM or SIGKILL in the middle of the second
test, which holds what a mock-gateway test holds: the session's in-process
mock with a fault set and a connected client, plus an `ibgw mock serve`
subprocess on its own port. The first test has already written evidence.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.core.config import env as config_env
from harness.core.record import PASSED, Evidence

MARKER = Path(config_env("IBGW_INTERRUPT_MARKER"))
HOLD = 120.0  # far longer than the parent waits before signalling


def test_writes_evidence_first(record_evidence: Callable[[Evidence], Path], gateway: Any) -> None:
    evidence = Evidence(scenario="interrupt-probe", target=gateway.endpoint.to_dict(), client={"name": "none"},
                        outcome=PASSED, checks={"written_before_the_signal": True})
    record_evidence(evidence.finish())


@pytest.fixture
def served_mock() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`ibgw mock serve --port 0` as the harness's tests start it; stopped at teardown."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "mock", "serve", "--port", "0",
                             "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "mock Gateway listening on 127.0.0.1:PORT (...)"
    port = int(line.split()[4].rsplit(":", 1)[1])
    yield proc, port
    proc.terminate()
    proc.wait(10)


async def test_held_in_the_middle_of_a_mock_gateway_test(
        mock_gateway: Any, client_factory: Callable[..., Any], served_mock: tuple[subprocess.Popen[str], int]) -> None:
    proc, serve_port = served_mock
    mock_gateway.set_fault("latency=0.01")
    client = client_factory("raw")
    await client.connect("127.0.0.1", mock_gateway.port, 4242, timeout=10)
    MARKER.write_text(json.dumps({"pytest_pid": os.getpid(), "mock_port": mock_gateway.port,
                                  "serve_pid": proc.pid, "serve_port": serve_port}))
    # The signal arrives while this waits; nothing sets the event.
    await asyncio.wait_for(asyncio.Event().wait(), HOLD)
