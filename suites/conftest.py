"""The fault x client -> outcome table of suites/test_faults.py.

Each fault test fills one row through `fault_matrix.case(...)`; at session
end the table goes to <evidence dir>/fault_matrix.json, to the terminal
summary, and (when allure-pytest runs with --alluredir) to the report as a
global attachment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from harness.core.redact import redact_text, redact_tree


@dataclass
class FaultRow:
    fault: str
    client: str
    expected: str
    observed: str = ""
    outcome: str = "failed"  # passed | failed | xfailed | skipped
    seconds: float = 0.0


class FaultMatrix:
    def __init__(self) -> None:
        self.rows: list[FaultRow] = []

    @contextmanager
    def case(self, fault: str, client: str, expected: str) -> Iterator[FaultRow]:
        """Record one row; the test sets row.observed, the outcome comes
        from how the block ends (an assertion failing inside it: failed)."""
        row = FaultRow(fault, client, expected)
        t0 = time.monotonic()
        try:
            yield row
            row.outcome = "passed"
        except pytest.xfail.Exception:
            row.outcome = "xfailed"
            raise
        except pytest.skip.Exception:
            row.outcome = "skipped"
            raise
        finally:
            row.seconds = round(time.monotonic() - t0, 3)
            self.rows.append(row)

    def text(self) -> str:
        header = ("fault", "client", "outcome", "expected", "observed")
        lines = [(r.fault, r.client, r.outcome, r.expected, r.observed) for r in self.rows]
        widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(4)]
        return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line[:4], widths)) + "  " + line[4]
                         for line in [header, *lines])


_MATRIX = pytest.StashKey[FaultMatrix]()


@pytest.fixture(scope="session")
def fault_matrix(pytestconfig: pytest.Config) -> FaultMatrix:
    return pytestconfig.stash.setdefault(_MATRIX, FaultMatrix())


def pytest_sessionfinish(session: pytest.Session) -> None:
    matrix = session.config.stash.get(_MATRIX, None)
    if matrix is None or not matrix.rows:
        return
    path = Path(session.config.getoption("--evidence-dir")) / "fault_matrix.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(redact_tree([asdict(r) for r in matrix.rows]), indent=2) + "\n", encoding="utf-8")
    try:
        import allure
    except ImportError:
        return
    if hasattr(allure, "global_attach"):  # allure-pytest >= 2.16; a no-op without --alluredir
        allure.global_attach(redact_text(matrix.text()), name="fault_matrix.txt",
                             attachment_type=allure.attachment_type.TEXT)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    matrix = terminalreporter.config.stash.get(_MATRIX, None)
    if matrix is not None and matrix.rows:
        terminalreporter.write_sep("-", "fault x client -> outcome")
        terminalreporter.write_line(redact_text(matrix.text()))
