"""`make test-live` keeps pytest's exit code where a caller can read it.

GNU make exits 2 for any failed recipe, whatever the recipe's status, so a
live run stopped by the paper-account interlock (pytest's exit 3) looked
like any other failure. The target now prints pytest's code and writes it
to reports/test-live.status. Here a real live run is stopped: the "real
Gateway" is a mock presenting a non-paper account, addressed as HOST:PORT.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from harness.mock import MockGateway
from tests.support.processes import arun, child_env

MAKE_TIMEOUT = 150.0


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
async def test_make_test_live_keeps_pytests_exit_3(tmp_path: Path) -> None:
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: make does not reinstall the venv
    reports = tmp_path / "reports"
    async with MockGateway(port=0, accounts=["U1234567"]) as gw:
        done = await arun(
            ["make", "-s", "test-live", f"GATEWAY=127.0.0.1:{gw.port}", "CLIENT=raw", f"PY={sys.executable}",
             f"STAMP={stamp}", f"REPORTS={reports}",
             f"PYTEST_ARGS=-p no:cacheprovider --evidence-dir {tmp_path / 'evidence'} -k account_sync"],
            env={**child_env(), "MAKEFLAGS": ""}, timeout=MAKE_TIMEOUT, merge_stderr=True)
    text = done.stdout
    assert "STOPPED before the first scenario" in text, text[-3000:]
    assert (reports / "test-live.status").read_text().strip() == "3", text[-3000:]
    assert "ibgw: pytest exited 3" in text, text[-3000:]
    assert done.returncode == 2  # make's own status for any failure: why the code is kept apart
    assert "U1234567" not in text
