"""The base install sits beside a team's own client libraries and changes none of them.

A fresh virtualenv gets what a team on the field reports' versions has
first, ib_async 2.0.1 and IBKR's legacy ibapi 9.81 wheel (the pairs
gateway-docker/client-matrix.sh builds venvs for), then the harness's base
install (`pip install <repo>`, no extras). Both clients stay at their
versions, nothing else provides `ibapi`, `pip check` is clean, and `ibgw
probe` from that venv reaches a mock Gateway through each client, saying
which client version it found. What the base install leaves out fails in
one line naming its extra. Every step is bounded; pip's cache makes it
take well under a minute on a warm machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.processes import MockServe, run

CLIENTS = {"ib_async": "2.0.1", "ibapi": "9.81.1.post1"}
PIP_TIMEOUT = 300  # a cold cache downloads; a warm one takes seconds
RUN_TIMEOUT = 60

# The module's venv is built in the first test's setup: a venv and two pip installs, each bounded by
# its own timeout above. pytest-timeout's default (120 s) counts that setup, and on a machine with
# CPU hogs beside the suite it ran out while pip was still working; the steps' own bounds decide.
pytestmark = pytest.mark.timeout(RUN_TIMEOUT + 2 * PIP_TIMEOUT + 60)


def _run(*args: str, timeout: float = RUN_TIMEOUT, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run(args, timeout=timeout, cwd=cwd or Path.cwd(),
               env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8"})


def _pip(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = _run(str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args, timeout=PIP_TIMEOUT)
    assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def _installed(venv: Path) -> dict[str, str]:
    listing = json.loads(_pip(venv, "list", "--format", "json").stdout)
    return {row["name"].lower().replace("_", "-"): row["version"] for row in listing}


@pytest.fixture(scope="module")
def team_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A team's venv: its clients first, then the harness's base install from a copy of this tree
    (a copy: an in-tree build would write build/ and egg-info into the checkout)."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "src"
    source.mkdir()
    shutil.copytree(ROOT / "harness", source / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = root / "venv"
    made = _run(sys.executable, "-m", "venv", str(venv))
    assert made.returncode == 0, made.stderr
    _pip(venv, "install", "--quiet", *(f"{name}=={version}" for name, version in CLIENTS.items()))
    _pip(venv, "install", "--quiet", str(source))
    return venv


def test_base_install_keeps_the_teams_clients_and_pip_check_is_clean(team_venv: Path) -> None:
    installed = _installed(team_venv)
    assert installed["ib-async"] == CLIENTS["ib_async"]
    assert installed["ibapi"] == CLIENTS["ibapi"]
    assert "ibapi-stable" not in installed, "the base install brought a second ibapi provider"
    assert "ibgw-harness" in installed
    # Nothing of an extra came with the base install.
    assert not {"docker", "allure-pytest", "matplotlib", "hypothesis", "coverage", "pytest-timeout"} & installed.keys()
    check = _run(str(team_venv / "bin" / "python"), "-m", "pip", "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_ibgw_probe_from_the_team_venv_reaches_the_mock_through_each_client(team_venv: Path, tmp_path: Path) -> None:
    mock = MockServe(tmp_path / "mock.err")  # the main venv's `ibgw mock serve`, on a free loopback port
    try:
        for client, says in (("raw", "ibgw-harness"), ("ib_async", "ib_async 2.0.1"), ("ibapi", "ibapi 9.81.1.post1")):
            proc = _run(str(team_venv / "bin" / "ibgw"), "probe", "--host", "127.0.0.1", "--port", str(mock.port),
                        "--client", client, "--timeout", "20", cwd=tmp_path)
            out = proc.stdout + proc.stderr
            assert proc.returncode == 0, out
            assert f"with {client} ({says}" in out.splitlines()[0], out  # the version the adapter found
            assert "OK: API ready" in out and "Traceback" not in out, out
    finally:
        mock.close()


def test_what_the_base_install_leaves_out_fails_in_one_line_naming_its_extra(team_venv: Path,
                                                                             tmp_path: Path) -> None:
    ibgw = str(team_venv / "bin" / "ibgw")
    proc = _run(ibgw, "soak", "--gateway", "docker:ibgw-mock:10.45", "--client", "raw", "--duration", "5",
                "--out", str(tmp_path / "soak"), cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if "needs the docker package" in line]
    assert proc.returncode != 0 and len(lines) == 1, proc.stdout + proc.stderr
    assert "pip install 'ibgw-harness[docker]'" in lines[0] and "Traceback" not in proc.stderr
    # The pytest plugin in the base install: a plain run works without pytest-timeout or allure.
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    run = _run(str(team_venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr


def test_a_missing_client_library_is_one_line_naming_its_extra(team_venv: Path, tmp_path: Path) -> None:
    """Last in this module: it uninstalls ib_async from the team's venv."""
    _pip(team_venv, "uninstall", "--yes", "--quiet", "ib_async")
    proc = _run(str(team_venv / "bin" / "ibgw"), "soak", "--gateway", "mock", "--client", "ib_async",
                "--duration", "5", "--out", str(tmp_path / "soak"), cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out, out  # click's usage error
    assert "--client ib_async: needs the ib_async package" in out and "pip install 'ibgw-harness[ib_async]'" in out
    assert not (tmp_path / "soak").exists(), "a refused soak wrote something"
    # Every optional import is lazy: each module of the base install imports without docker,
    # allure, matplotlib or (now) ib_async; only the ib_async adapter itself needs its library.
    walk = ("import importlib, pkgutil, harness\n"
            "for m in pkgutil.walk_packages(harness.__path__, 'harness.'):\n"
            "    if not m.name.endswith(('__main__', '.ib_async_client')):\n"
            "        importlib.import_module(m.name)\n"
            "print('imported')\n")
    imported = _run(str(team_venv / "bin" / "python"), "-c", walk, cwd=tmp_path)
    assert imported.returncode == 0 and "imported" in imported.stdout, imported.stderr[-3000:]
