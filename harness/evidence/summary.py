"""Plain-text summary of a run's evidence: the table `make report` ends with.

Why plain text: it is what an on-call engineer sees in a CI log or over
ssh, before anyone opens the HTML report.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from ..core.log_setup import setup_logging
from .text import shorten, was_shortened

log = logging.getLogger("harness.evidence.summary")

COLUMNS = ("test", "scenario", "client", "target", "sv", "outcome", "ready ms", "ping ms", "failed phase / cause")
CAUSE_WIDTH = 70


def load(directory: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable evidence %s: %s", path.name, exc)
            continue
        if isinstance(data, dict):  # fault_matrix.json and other tables share the directory
            data.setdefault("_file", path.name)  # which test wrote it: names duplicate rows
            rows.append(data)
    return rows


def table(records: list[dict[str, Any]]) -> str:
    lines = [_row(r) for r in records]
    # Rows that read the same name the test that wrote them (the first
    # column, shown only when some rows would otherwise be duplicates).
    seen: dict[tuple[str, ...], int] = {}
    for line in lines:
        seen[tuple(line[1:])] = seen.get(tuple(line[1:]), 0) + 1
    for line in lines:
        if seen[tuple(line[1:])] == 1:
            line[0] = ""
    columns: tuple[str, ...] = COLUMNS
    if not any(line[0] for line in lines):
        columns, lines = COLUMNS[1:], [line[1:] for line in lines]
    widths = [max(len(col), *(len(line[i]) for line in lines)) if lines else len(col)
              for i, col in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    expected = sum(1 for r in records if _expected_failure(r))
    passed = sum(1 for r in records if r.get("outcome") == "passed")
    failed = len(records) - passed - expected
    out.append(f"{passed} passed, {failed} failed, {expected} failed under injected faults or as detector self-tests")
    if any(was_shortened(line[-1]) for line in lines):
        out.append("Texts ending in \u2026 are shortened at a word boundary; the full cause is in the test's "
                   "evidence file (<evidence dir>/<test>.json).")
    return "\n".join(out)


def _row(r: dict[str, Any]) -> list[str]:
    m = r.get("measurements", {})
    params = r.get("parameters", {})
    client = r.get("client", {}).get("name", "?")
    if "client_id" in params:
        client += f" id={params['client_id']}"
    if params.get("readonly") is False:
        client += " rw"
    if "mode" in params:
        client += f" {params['mode']} x{params.get('runs')}"
    cause = "" if r.get("outcome") == "passed" else f"{r.get('failed_phase')}: {r.get('cause')}"
    faults = r.get("parameters", {}).get("mock_faults")
    outcome = r.get("outcome", "?") + ((f" (fault {' '.join(faults)})" if faults else " (expected)")
                                        if _expected_failure(r) else "")
    return [_test_name(r), r.get("scenario", "?"), client, r.get("target", {}).get("label", "?"),
            str(r.get("server_version") or "-"), outcome,
            _num(m.get("api_ready_ms", m.get("api_ready_median_ms"))), _num(m.get("ping_ms")),
            shorten(cause, CAUSE_WIDTH)]


def _test_name(r: dict[str, Any]) -> str:
    """The test that wrote a record, from its evidence file's name
    (suites_test_zombie.py_test_x_param.json -> test_x_param)."""
    stem = str(r.get("_file") or "?").removesuffix(".json")
    return stem.split(".py_", 1)[-1]


def _expected_failure(r: dict[str, Any]) -> bool:
    """A failure the run provoked on purpose: a detector self-test, or a
    scenario run while mock faults were injected (the fault suites assert
    that it fails, and how)."""
    params = r.get("parameters", {})
    return r.get("outcome") == "failed" and (params.get("expected_outcome") == "failed"
                                             or bool(params.get("mock_faults")))


def _num(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    setup_logging(logging.WARNING, if_unconfigured=True)
    directory = Path(args[0] if args else "reports/evidence")
    if not directory.is_dir():
        print(f"no evidence directory {directory}: run the suites first (make report)", file=sys.stderr)
        return 1
    records = load(directory)
    if not records:
        print(f"no evidence in {directory}: did any scenario test run?", file=sys.stderr)
        return 1
    print(table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
