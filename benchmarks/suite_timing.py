"""pytest plugin for benchmarks/run_all.py: where the CI suite's time goes.

    python -m pytest tests suites -p benchmarks.suite_timing   (env IBGW_SUITE_TIMING=out.json)

Per test (setup + call + teardown): wall time, the process's CPU time over
the same span, and whether it injects a fault (it uses the `mock_gateway`
fault-control fixture, its name or module is about faults, or it is the CI
soak with its fault schedule). A test that is
waiting on a timeout sits idle, so for fault tests wall minus CPU is the
time spent waiting on what the fault requires (a delay, a silent handshake
running into its timeout): the floor no harness change can remove. The rest
is harness overhead. Subprocess-driven tests (fuzz, interruption, CLI) are
also idle while their child works; they are reported on their own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.core.config import env as config_env

FAULT_FIXTURES = {"mock_gateway"}
# Tests that inject faults without the fixture: a soak with a fault schedule,
# and any test whose name says it provokes one.
FAULT_MODULES = ("test_soak_ci",)
SUBPROCESS_MODULES = ("test_fuzz_mock", "test_interrupt_cleanup", "test_cli_", "test_doctor")

_rows: list[dict[str, Any]] = []
_started = 0.0


def classify(item: pytest.Item) -> str:
    module = getattr(getattr(item, "module", None), "__name__", "") or ""
    if (FAULT_FIXTURES & set(getattr(item, "fixturenames", ())) or "fault" in item.name.lower()
            or "fault" in module.rsplit(".", 1)[-1] or module.rsplit(".", 1)[-1] in FAULT_MODULES):
        return "fault"
    if any(part in module for part in SUBPROCESS_MODULES):
        return "subprocess"
    return "other"


def pytest_sessionstart(session: pytest.Session) -> None:
    global _started
    _started = time.perf_counter()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    yield
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    _rows.append({"nodeid": item.nodeid, "kind": classify(item), "wall_s": round(wall, 4),
                  "cpu_s": round(cpu, 4), "idle_s": round(max(0.0, wall - cpu), 4)})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = config_env("IBGW_SUITE_TIMING")
    if not out:
        return
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({"session_wall_s": round(time.perf_counter() - _started, 3),
                                     "exitstatus": int(exitstatus), "tests": _rows}, indent=1))
