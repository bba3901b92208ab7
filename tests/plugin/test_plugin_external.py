"""The pytest plugin works for another project: a temporary project OUTSIDE
this repository, holding only the README's example test file, run with the
installed package's Python. The fixtures reach it through the pytest11
entry point alone (no conftest, no sys.path tricks)."""

from __future__ import annotations

import shutil
import sys
from importlib.metadata import entry_points
from pathlib import Path

from tests.support.processes import REPO, child_env, run_pytest

EXAMPLE = REPO / "examples" / "plugin_usage" / "test_example.py"


def test_the_entry_point_names_the_plugin():
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("ibgw_harness") == "harness.pytest_plugin"


async def test_example_project_outside_the_repo_passes(tmp_path_factory):
    project = tmp_path_factory.mktemp("other_project")
    assert REPO not in project.parents and project != REPO
    shutil.copy(EXAMPLE, project / "test_example.py")
    env = child_env(PYTHONPATH="")  # nothing from this checkout on the path but the installed package
    code, out = await run_pytest("-q", "-W", "ignore::DeprecationWarning", evidence_dir=project / "evidence",
                                 cwd=project, env=env, python=str(Path(sys.executable)))
    assert code == 0, out[-3000:]
    assert "3 passed" in out, out[-2000:]
