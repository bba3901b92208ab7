"""`make report` without npm: one line naming npm, every other artifact
made, a non-zero exit (the HTML report is missing), and a last line that
says what the run found.

A slice of the suites runs (one handshake, the 10.30 and 10.50 matrix rows
with one zombie run each) so the test takes seconds, not the full run's
minutes; the recipe is the real one. 10.30 is the regression row because
its cells fail at once (closed after startApi); 10.41's wedge made every
cell sit out handshake timeouts (40 s of this test under load) and says
nothing more about the recipe. PATH holds every tool the machine has
except npm and npx.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support.processes import run

SLICE = "test_handshake_completes and raw-id1-readonly or test_matrix_cell or test_version_probe or pin_never"


def _path_without_npm(tmp: Path) -> str:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not Path(directory).is_dir():
            continue
        for tool in Path(directory).iterdir():
            if tool.name in ("npm", "npx") or (bin_dir / tool.name).exists():
                continue
            if tool.is_file() and os.access(tool, os.X_OK):
                (bin_dir / tool.name).symlink_to(tool)
    return str(bin_dir)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
@pytest.mark.timeout(660)  # make report (its xdist workers, the summary, the pin): minutes under load
def test_make_report_without_npm_names_npm_once_and_makes_every_other_artifact(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp_path = tmp_path_factory.mktemp("mkreport")  # a path that does not itself say "npm"
    reports = tmp_path / "reports"
    env = {**os.environ, "PATH": _path_without_npm(tmp_path), "IBGW_MATRIX_VERSIONS": "10.30,10.50",
           "IBGW_MATRIX_RUNS": "1"}
    env.pop("IBGW_GATEWAY", None)
    env.pop("MAKEFLAGS", None)
    proc = run(["make", "--no-print-directory", "report", f"REPORTS={reports}",
                f"PYTEST_ARGS=-k '{SLICE}' -p no:cacheprovider -q"], env=env, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    npm_lines = [line for line in out.splitlines() if re.search(r"\bnpm\b", line)]
    assert len(npm_lines) == 1, npm_lines
    assert npm_lines[0].startswith("HTML report skipped: npm not found"), npm_lines
    assert "Error 127" not in out and "not found" not in out.replace(npm_lines[0], "")
    for artifact in ("allure-results/environment.properties", "junit.xml", "evidence/matrix", "pinning.md",
                     "pinning.json", "plots/handshake_phase_latency.png"):
        assert (reports / artifact).exists(), f"{artifact} missing:\n{out[-3000:]}"
    assert not (reports / "html").exists()
    last = out.strip().splitlines()
    final = next(line for line in reversed(last) if line.startswith("make report: "))
    assert "regressions found in 10.30" in final and "pinning recommends 10.50" in final, final
    assert "HTML report missing" in final and final.endswith("(exit 1)"), final
