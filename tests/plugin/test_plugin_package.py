"""The plugin's parts, seen from a project that uses it: the entry point
still names `harness.pytest_plugin`; the live-run glue is registered only
for live runs; a project's own plugin can wrap the session's Gateway through
the `pytest_ibgw_open_gateway` hook; the old fixture names still work;
`ibgw_client_name` gives one test per chosen client.

Each case is a temporary project outside this repository, run by the Python
that has the harness installed (tests/support/processes.py's runner).
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

from tests.support.processes import REPO, child_env, run_pytest

CONFTEST = '''
import contextlib, json, os

from harness.pytest_plugin.state import GatewayHandle


@contextlib.asynccontextmanager
async def _wrapped(target, endpoint):
    endpoint.details["wrapped_by"] = "the team's plugin"
    yield GatewayHandle(target, endpoint)


def pytest_ibgw_open_gateway(config, target, endpoint):
    return _wrapped(target, endpoint)


def pytest_sessionfinish(session):
    with open(os.environ["TEAM_PROBE_OUT"], "w") as out:
        json.dump({"live_plugin": session.config.pluginmanager.has_plugin("ibgw_harness.live")}, out)
'''

TESTS = '''
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_hook_wrapped_the_gateway(ibgw_endpoint):
    assert ibgw_endpoint.details["wrapped_by"] == "the team's plugin"


async def test_the_old_names_are_the_same_fixtures(ib_gateway, ibgw_endpoint, gateway, ibgw_gateway,
                                                   harness_config, ibgw_config):
    assert ib_gateway is ibgw_endpoint and gateway is ibgw_gateway and harness_config is ibgw_config


def test_one_per_client(ibgw_client_name, ibgw_config):
    assert ibgw_client_name in ibgw_config.clients == ("raw", "ibapi")
'''


def _project(root: Path) -> Path:
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_team.py").write_text(TESTS)
    return root


def test_the_entry_point_is_the_package() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins["ibgw_harness"] == "harness.pytest_plugin"
    import harness.pytest_plugin as plugin

    assert Path(plugin.__file__).name == "__init__.py"


async def test_a_mock_run_uses_the_hook_and_registers_no_live_glue(tmp_path_factory) -> None:
    project = _project(tmp_path_factory.mktemp("hook_project"))
    assert REPO not in project.parents
    probe = project / "probe.json"
    code, out = await run_pytest("-q", "--client", "raw", "--client", "ibapi", evidence_dir=project / "evidence",
                                 cwd=project,
                                 env=child_env(PYTHONPATH="", TEAM_PROBE_OUT=str(probe)), python=sys.executable)
    assert code == 0 and "4 passed" in out, out[-3000:]
    assert json.loads(probe.read_text()) == {"live_plugin": False}


async def test_a_live_run_registers_the_live_glue(tmp_path_factory) -> None:
    """--ibgw-live without a target: the live glue is there, and says what to set."""
    project = _project(tmp_path_factory.mktemp("live_project"))
    probe = project / "probe.json"
    code, out = await run_pytest("-q", "-rs", "--ibgw-live", "--client", "raw", "--client", "ibapi",
                                 evidence_dir=project / "evidence", cwd=project,
                                 env=child_env(PYTHONPATH="", TEAM_PROBE_OUT=str(probe)), python=sys.executable)
    assert code == 0 and "4 skipped" in out and "set IBGW_HOST and IBGW_PORT" in out, out[-3000:]
    assert json.loads(probe.read_text()) == {"live_plugin": True}
