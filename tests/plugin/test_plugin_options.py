"""The pytest plugin refuses bad options before any test runs: one
`ERROR:` line with the cause and a hint, pytest's usage-error exit (4), no
traceback, nothing written. A bad value found only inside a test fails
every test with a traceback, or worse (an empty --evidence-dir once wrote
evidence into the repository root)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.processes import REPO, child_env, pytest_cmd, run

ANY_TEST = f"{REPO}/tests/evidence/test_pinning.py::test_version_order"  # absolute: the run's directory is tmp_path


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(pytest_cmd(ANY_TEST, "--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml"), *args),
               cwd=tmp_path, env={**child_env(), "PYTHONPATH": str(REPO)}, timeout=120)


@pytest.mark.parametrize(("args", "says"), [
    (("--gateway", "127.0.0.1:notaport"), "is not in 1..65535"),
    (("--gateway", "nonsense"), "is not a target"),
    (("--gateway", "replay:/nonexistent/rec.jsonl"), "/nonexistent/rec.jsonl"),
    (("--client", "no_such_team_module:factory"), "no_such_team_module"),
    (("--ibgw-timeout=-1",), "--ibgw-timeout -1: a connect timeout must be above 0 seconds"),
    (("--ibgw-timeout", "0"), "--ibgw-timeout 0: a connect timeout must be above 0 seconds"),
    (("--evidence-dir=",), "--evidence-dir is empty"),
    (("--evidence-dir", "afile"), "afile is a file, not a directory; hint: choose another --evidence-dir"),
])
def test_bad_options_are_one_usage_error_line(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    (tmp_path / "afile").write_text("not a directory\n")
    proc = _pytest(tmp_path, *args)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    error = proc.stderr.strip()
    assert error.startswith("ERROR: ") and "\n" not in error and "Traceback" not in error, error
    assert says in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"], "a refused run wrote something"
