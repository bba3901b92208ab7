"""Run pytest in a child process, bounded, from an async test (so a mock
Gateway on the test's own event loop keeps serving while the child runs).

Every child gets its own --evidence-dir: a child writing to the default
reports/evidence would wipe the outer run's evidence at its session start.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 150.0


CI_POLICY = ("IBGW_REQUIRE_DOCKER", "IBGW_REQUIRE_BROWSER")


def child_env(**extra: str) -> dict[str, str]:
    # CI's policy (IBGW_REQUIRE_DOCKER/BROWSER: fail, never skip) reaches the children; the run's own settings do not
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBGW_", "PYTEST_")) or k in CI_POLICY}
    env.update(extra)
    return env


async def run_pytest(*args: str, evidence_dir: Path, cwd: Path = REPO, env: dict[str, str] | None = None,
                     timeout: float = CHILD_TIMEOUT, python: str = sys.executable,
                     ibgw_options: bool = True) -> tuple[int, str]:
    """(exit code, combined output) of `python -m pytest ARGS` in cwd.
    ibgw_options=False: no --evidence-dir either (a run naming no ibgw option)."""
    own = ("--evidence-dir", str(evidence_dir)) if ibgw_options else ()
    proc = await asyncio.create_subprocess_exec(
        python, "-m", "pytest", *args, "-p", "no:cacheprovider", *own,
        cwd=cwd, env=env if env is not None else child_env(), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")
