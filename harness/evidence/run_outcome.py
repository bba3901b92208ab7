"""The last line of `make report`: what the run found, and its exit code.

Why a module of its own: the suites' exit code cannot tell a Gateway build
that regressed (a finding: the matrix exists to catch it, its cell is red
in the report) from a harness or scenario failure (the run is broken). The
convention (suites/test_version_matrix.py): a matrix cell or version probe
whose build regressed FAILS and carries the allure label
`gateway_regression=<version>`. This step reads the allure results and the
pinning decision and says, in one line:

    make report: regressions found in 10.41, 10.30 (red in the report); pinning recommends 10.50

Exit codes (the README repeats them):
  0  every failure is a Gateway regression the matrix caught, a build is
     recommended, and every artifact (the HTML report included) was made;
  1  an unexpected test failure, no recommendation, or an artifact missing
     (e.g. no npm: the HTML report; every other artifact is still there);
  other: pytest's own code when it stopped early (2 interrupted, 3 internal
     error, 4 usage error, 5 no tests collected).

    python -m harness.evidence.run_outcome REPORTS_DIR --pytest-status N [--html-status N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .allure_io import read_results

FAILED = ("failed", "broken")


def failures(alluredir: Path) -> tuple[dict[str, list[str]], list[str]]:
    """(regressions by Gateway version -> test names, other failed test names)."""
    regressions: dict[str, list[str]] = {}
    other: list[str] = []
    for path, result, labels in read_results(alluredir):
        if result.get("status") not in FAILED:
            continue
        name = str(result.get("name") or result.get("fullName") or path.name)
        version = labels.get("gateway_regression")
        if version and result.get("status") == "failed":
            regressions.setdefault(str(version), []).append(name)
        else:
            other.append(name)
    return regressions, other


def outcome(reports: Path, pytest_status: int, html_status: int = 0) -> tuple[int, str]:
    """The exit code and the one line that explains it."""
    regressions, other = failures(reports / "allure-results")
    pinning = _pinning(reports / "pinning.json")
    parts: list[str] = []
    if regressions:
        from .pinning import version_order

        found = sorted(regressions, key=version_order, reverse=True)
        parts.append(f"regressions found in {', '.join(found)} (red in the report)")
    if other:
        parts.append(f"{len(other)} unexpected failure(s), e.g. {other[0]}")
    if pinning is None:
        parts.append("no pinning decision (no matrix evidence)")
    elif pinning.get("status") == "recommended":
        parts.append(f"pinning recommends {pinning.get('recommended')}")
    else:
        parts.append(f"pinning is {pinning.get('status')}: {pinning.get('reason')}")
    if html_status:
        parts.append("HTML report missing (see above)")
    if pytest_status not in (0, 1):
        code = pytest_status  # interrupted, internal or usage error: pytest's own code
    elif other or html_status or (pytest_status == 1 and not regressions):
        code = 1
    elif pinning is not None and pinning.get("status") != "recommended":
        code = 1
    else:
        code = 0
    return code, "make report: " + "; ".join(parts or ["every test passed"]) + f" (exit {code})"


def _pinning(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.evidence.run_outcome",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("reports", type=Path, nargs="?", default=Path("reports"))
    parser.add_argument("--pytest-status", type=int, required=True)
    parser.add_argument("--html-status", type=int, default=0)
    args = parser.parse_args(argv)
    code, line = outcome(args.reports, args.pytest_status, args.html_status)
    print(line)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
