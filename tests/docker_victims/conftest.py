"""A gate for the "next run" of tests/targets/test_container_target.py.

Every activated pytest session on the engine sweeps dead runs' containers,
so under `make test` a sibling worker's nested session could take a
SIGKILLed victim's orphan in the seconds between the kill and the next
run's start-up sweep. With VICTIM_GATE=1 the next run is started *before*
the kill: at session start (before the harness's own session start, which
sweeps) it prints VICTIM-GATE-READY and blocks on one line of stdin. The
parent kills the victim, then writes that line, and the sweep follows
within milliseconds. The wait is bounded by the parent's own timeout.
"""

from __future__ import annotations

import os
import sys

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get("VICTIM_GATE"):
        return
    print("VICTIM-GATE-READY", flush=True)
    sys.stdin.readline()  # the parent has killed the victim: sweep now
