"""Where a run's artifacts are: the closing lines of `make report`.

Why: a person who just ran the report wants the path to open next, and a
CI log should say what it produced (and what it did not) without anyone
listing directories by hand.

    python -m harness.evidence.artifacts [REPORTS_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path


def describe(reports: Path) -> list[tuple[str, str, str]]:
    """(what, where, note) for each artifact; a missing one says so."""
    rows: list[tuple[str, str, str]] = []

    def add(what: str, path: Path, note: str) -> None:
        rows.append((what, str(path), note if path.exists() else "MISSING"))

    results = reports / "allure-results"
    add("allure results", results, f"{len(list(results.glob('*-result.json')))} test results"
        if results.is_dir() else "")
    add("JUnit XML", reports / "junit.xml", "suite properties gateway_version, gateway_versions")
    evidence = reports / "evidence"
    add("evidence JSON", evidence, f"{len(list(evidence.glob('*.json')))} files" if evidence.is_dir() else "")
    plots = reports / "plots"
    add("plots", plots, ", ".join(sorted(p.name for p in plots.glob("*.png"))) if plots.is_dir() else "")
    html = reports / "html" / "index.html"
    add("HTML report", html, f"open {html.resolve().as_uri()}" if html.exists() else "")
    history = reports / "history.jsonl"
    runs = sum(1 for line in history.read_text(encoding="utf-8").splitlines() if line.strip()) if history.exists() else 0
    add("report history", history, f"{runs} runs")
    shot = reports / "report-screenshot.png"
    if shot.exists():  # made by the test that renders the report (make test)
        add("report screenshot", shot, "from the last browser test")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    rows = describe(Path(args[0] if args else "reports"))
    width = max(len(what) for what, _, _ in rows)
    print("artifacts:")
    for what, where, note in rows:
        print(f"  {what.ljust(width)}  {where}" + (f"  ({note})" if note else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
