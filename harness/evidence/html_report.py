"""The offline HTML report: Allure 3 (npm `allure`, pinned in
tools/allure/package-lock.json) turns the allure results into one
self-contained index.html that opens from the file system.

Why Allure 3 through Node: PyPI has no Allure command line, Allure 2 needs
Java, and Allure 3's single-file mode embeds every data file, so the report
is one file a person can attach to a ticket or open over file:// with no
server and no network. History lives in one JSON-lines file
(reports/history.jsonl) that each generation appends to, so trends survive
from run to run.

    python -m harness.evidence.html_report [--results DIR] [--output DIR] [--history FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..core.errors import HarnessError
from .first_screen import inject

TOOLS_DIR = Path(__file__).resolve().parents[2] / "tools" / "allure"
CONFIG = "allurerc.mjs"
GENERATE_TIMEOUT_S = 300
INSTALL_TIMEOUT_S = 600

# The awesome report template always embeds Google Analytics (Allure 3.18:
# `analyticsEnable: true` is hard-coded). A report about a team's Gateway
# must not call out when opened, so the block is cut from the output.
_ANALYTICS_RE = re.compile(
    r"\s*<script async src=\"https://www\.googletagmanager\.com/gtag/js[^\"]*\"></script>\s*"
    r"<script>(?:(?!</script>)[\s\S])*?gtag\('config'(?:(?!</script>)[\s\S])*</script>")


class ReportError(HarnessError, RuntimeError):
    """An expected failure (no node, tooling not installed, no results): one
    line with the cause and a hint, no traceback."""


def allure_cli(tools_dir: Path = TOOLS_DIR) -> Path:
    return tools_dir / "node_modules" / "allure" / "cli.js"


def tooling_installed(tools_dir: Path = TOOLS_DIR) -> bool:
    return allure_cli(tools_dir).is_file() and (tools_dir / "node_modules" / "playwright-core").is_dir()


def install_tooling(tools_dir: Path = TOOLS_DIR) -> None:
    """`npm ci` from the committed lock file (what `make report-tools` runs)."""
    npm = shutil.which("npm")
    if npm is None:
        raise ReportError("npm not found: install Node.js 18+ with npm (Debian: apt-get install nodejs npm)")
    proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=tools_dir,
                          check=False, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ReportError(f"npm ci in {tools_dir} failed: {' / '.join(tail)}")


def generate(results: Path, output: Path, history: Path, *, name: str = "ibgw-harness",
             tools_dir: Path = TOOLS_DIR, pinning: Path | None = None, fault_matrix: Path | None = None) -> Path:
    """Generate the single-file report into `output`; returns its index.html.
    With `pinning` (pinning.json from `ibgw pin`) and `fault_matrix`
    (<evidence dir>/fault_matrix.json), the report's first screen shows the
    pinning decision and the fault x client table (evidence.first_screen)."""
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise ReportError(f"no allure results in {results}: run the suites with --alluredir={results} first")
    _check_output(output)
    node = shutil.which("node")
    if node is None:
        raise ReportError("node not found: the HTML report needs Node.js 18+ (Debian: apt-get install nodejs npm)")
    if not allure_cli(tools_dir).is_file():
        raise ReportError(f"Allure 3 is not installed in {tools_dir}: run `make report-tools` (npm ci)")
    if output.exists():
        shutil.rmtree(output)  # the previous report (checked above to be one)
    history.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "IBGW_ALLURE_RESULTS": str(results.resolve()), "IBGW_ALLURE_OUTPUT": str(output.resolve()),
           "IBGW_ALLURE_HISTORY": str(history.resolve()), "IBGW_ALLURE_NAME": name, "NO_COLOR": "1"}
    proc = subprocess.run([node, str(allure_cli(tools_dir)), "generate", str(results.resolve()),
                           "--config", str(tools_dir / CONFIG)],
                          cwd=tools_dir, env=env, check=False, capture_output=True, text=True,
                          timeout=GENERATE_TIMEOUT_S)
    index = output / "index.html"
    if proc.returncode != 0 or not index.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ReportError(f"allure generate failed (exit {proc.returncode}): {' / '.join(tail)}")
    _strip_analytics(index)
    inject(index, results, pinning, fault_matrix)
    return index


def _check_output(output: Path) -> None:
    """The previous report is replaced, but never a directory that is not one."""
    if output.exists() and not output.is_dir():
        raise ReportError(f"{output} is a file, not a report directory: choose another --output")
    if output.is_dir() and any(output.iterdir()) and not (
            (output / "index.html").exists() or (output / "summary.json").exists()):
        raise ReportError(f"{output} exists and does not look like a report: choose another --output")


def _strip_analytics(index: Path) -> None:
    html = index.read_text(encoding="utf-8")
    stripped, count = _ANALYTICS_RE.subn("", html, count=1)
    if "googletagmanager" in stripped:
        raise ReportError(f"{index} still loads Google Analytics: the Allure template changed; "
                          "update _ANALYTICS_RE in harness/evidence/html_report.py")
    if count:
        index.write_text(stripped, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.evidence.html_report", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=Path("reports/allure-results"))
    parser.add_argument("--output", type=Path, default=Path("reports/html"))
    parser.add_argument("--history", type=Path, default=Path("reports/history.jsonl"))
    parser.add_argument("--pinning", type=Path, default=None,
                        help="pinning.json (ibgw pin --out): the decision shown on the report's first screen")
    parser.add_argument("--fault-matrix", type=Path, default=None,
                        help="fault_matrix.json from the suites' evidence: the fault x client table")
    parser.add_argument("--install", action="store_true", help="npm ci the pinned tooling first if it is missing")
    args = parser.parse_args(argv)
    try:
        if args.install and not tooling_installed():
            install_tooling()
        index = generate(args.results, args.output, args.history, pinning=args.pinning,
                         fault_matrix=args.fault_matrix)
    except (ReportError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
        print(f"HTML report not generated: {exc}", file=sys.stderr)
        return 1
    print(f"HTML report: {index} (open over file://; history in {args.history})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
