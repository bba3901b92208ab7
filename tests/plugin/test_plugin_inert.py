"""Installing the harness changes nothing in a team's project until it is used.

A temporary project OUTSIDE this repository, with its own
reports/evidence/important.json and a conftest that installs its own
SIGTERM handler, is run with plain `pytest` by the Python that has the
harness installed (the plugin loads through the pytest11 entry point). The
project's tests report, from inside the run, the SIGTERM handler and every
IBGW_* variable they see; afterwards every file is as it was and nothing
was created. Then the same project asks for the harness (an ibgw option,
an ibgw fixture) and the plugin acts: the contrast shows the first run's
silence is the plugin being inert, not the plugin being absent.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from tests.support.processes import REPO, child_env, run_pytest

CONFTEST = '''
import json, os, signal

def team_handler(signum, frame):
    pass

signal.signal(signal.SIGTERM, team_handler)


def pytest_sessionfinish(session):
    # What the run looks like at its very end, after every plugin's hooks ran.
    handler = signal.getsignal(signal.SIGTERM)
    seen = {"sigterm": getattr(handler, "__name__", repr(handler)),
            "ibgw_env": {k: v for k, v in os.environ.items() if k.startswith("IBGW_")},
            "plugin_loaded": session.config.pluginmanager.has_plugin("ibgw_harness")}
    with open(os.environ["TEAM_PROBE_OUT"], "w") as out:
        json.dump(seen, out)
'''

TEAM_TEST = '''
import pytest

def test_team_code():
    assert 1 + 1 == 2

@pytest.mark.live
def test_team_marks_its_own_live_tests():
    """A project's own `live` marker is its business: the plugin must not deselect it."""
'''

IMPORTANT = {"team": "evidence of our own", "scenario": "not the harness's", "outcome": "kept"}


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under root (but the probe output) with a hash of its content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "probe.json"}


def _project(root: Path) -> Path:
    (root / "reports" / "evidence").mkdir(parents=True)
    (root / "reports" / "evidence" / "important.json").write_text(json.dumps(IMPORTANT) + "\n")
    (root / "reports" / "evidence" / "notes.json").write_text('{"scenario": "x"}\n')  # evidence-shaped, not evidence
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_team.py").write_text(TEAM_TEST)
    (root / "pytest.ini").write_text("[pytest]\nmarkers =\n    live: the team's own marker\n")
    return root


async def test_a_plain_pytest_in_a_team_project_is_left_as_it_was(tmp_path_factory):
    project = _project(tmp_path_factory.mktemp("team_project"))
    assert REPO not in project.parents
    before = _snapshot(project)
    # child_env drops the outer run's IBGW_*; these two a team may have exported for other uses
    # (one of them unusable by the harness): an inert plugin neither reads them into action nor changes them.
    env = child_env(PYTHONPATH="", TEAM_PROBE_OUT=str(project / "probe.json"), IBGW_TIMEOUT="not-a-number",
                    IBGW_EVIDENCE_DIR=str(project / "harness-evidence"))
    proc_env_before = {k: v for k, v in env.items() if k.startswith("IBGW_")}

    # run_pytest adds --evidence-dir (an ibgw option) for the harness's own children; this run must
    # name none, so it is started without run_pytest's options but with its bounded runner.
    code, out = await _plain_pytest(project, env)
    assert code == 0, out[-3000:]
    assert "2 passed" in out, out[-2000:]  # the team's `live` test ran: not deselected by the plugin
    seen = json.loads((project / "probe.json").read_text())
    assert seen == {"sigterm": "team_handler", "ibgw_env": proc_env_before, "plugin_loaded": True}
    assert _snapshot(project) == before
    assert sorted(p.name for p in project.iterdir()) == ["conftest.py", "probe.json", "pytest.ini", "reports",
                                                          "test_team.py"]
    assert sorted(p.name for p in (project / "reports").iterdir()) == ["evidence"]


async def test_the_same_project_gets_the_harness_when_it_asks(tmp_path_factory):
    """Contrast: with an ibgw option named the plugin claims the run (IBGW_RUN_*
    set for its children) and writes evidence where it is told; the team's own
    files in that directory, and its own SIGTERM handler, still stay."""
    project = _project(tmp_path_factory.mktemp("team_project_asks"))
    (project / "test_uses_harness.py").write_text(
        "async def test_gateway(ibgw_endpoint):\n    assert ibgw_endpoint.port > 0\n")
    env = child_env(PYTHONPATH="", TEAM_PROBE_OUT=str(project / "probe.json"))
    code, out = await run_pytest("-q", "-p", "asyncio", "-o", "asyncio_mode=auto",
                                 "-o", "asyncio_default_fixture_loop_scope=session",
                                 "-o", "asyncio_default_test_loop_scope=session",
                                 evidence_dir=project / "reports" / "evidence", cwd=project, env=env,
                                 python=sys.executable)
    assert code == 0, out[-3000:]
    seen = json.loads((project / "probe.json").read_text())
    assert {"IBGW_RUN_DIR", "IBGW_RUN_OWNER"} <= set(seen["ibgw_env"])
    assert seen["sigterm"] == "team_handler"  # SIGTERM-as-Ctrl-C only replaces Python's default
    assert json.loads((project / "reports" / "evidence" / "important.json").read_text()) == IMPORTANT
    assert (project / "reports" / "evidence" / "notes.json").is_file()


async def test_a_fixture_alone_activates_the_plugin_lazily(tmp_path_factory):
    """No ibgw option at all: the first test that uses an ibgw fixture claims the run."""
    project = _project(tmp_path_factory.mktemp("team_project_lazy"))
    (project / "test_uses_harness.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.asyncio(loop_scope='session')\n"
        "async def test_gateway(ibgw_endpoint):\n    assert ibgw_endpoint.port > 0\n")
    env = child_env(PYTHONPATH="", TEAM_PROBE_OUT=str(project / "probe.json"))
    code, out = await _plain_pytest(project, env)
    assert code == 0, out[-3000:]
    seen = json.loads((project / "probe.json").read_text())
    assert "IBGW_RUN_OWNER" in seen["ibgw_env"]
    assert json.loads((project / "reports" / "evidence" / "important.json").read_text()) == IMPORTANT


async def _plain_pytest(project: Path, env: dict[str, str]) -> tuple[int, str]:
    """`python -m pytest -q` in project with no ibgw option: run_pytest's
    process handling, without the --evidence-dir it adds for the harness's
    own children (an ibgw option would be asking for the plugin)."""
    return await run_pytest("-q", evidence_dir=Path(), cwd=project, env=env, python=sys.executable,
                            ibgw_options=False)


async def test_a_bad_setting_found_while_inert_fails_only_the_tests_that_use_the_harness(tmp_path_factory):
    """IBGW_TIMEOUT unusable: a plain run does not care; the test that uses an
    ibgw fixture fails with the one-line cause, no traceback."""
    project = _project(tmp_path_factory.mktemp("team_project_bad_env"))
    (project / "test_uses_harness.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.asyncio(loop_scope='session')\n"
        "async def test_gateway(ibgw_endpoint):\n    assert ibgw_endpoint.port > 0\n")
    env = child_env(PYTHONPATH="", TEAM_PROBE_OUT=str(project / "probe.json"), IBGW_TIMEOUT="soon")
    code, out = await _plain_pytest(project, env)
    assert code == 1 and "2 passed" in out and "1 error" in out, out[-3000:]
    assert "ibgw: IBGW_TIMEOUT='soon' is not a float; hint: unset it or fix it" in out, out[-3000:]
    assert "Traceback" not in out
