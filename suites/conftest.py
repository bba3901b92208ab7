"""The fault x client -> outcome table of suites/test_faults.py, and the
`fault_bench` those tests drive their faults through.

Each fault test fills one row through `fault_matrix.case(...)` (or
`fault_bench.case(...)`, which also sets the fault); at session end the table
goes to <evidence dir>/fault_matrix.json, to the terminal summary, and (when
allure-pytest runs with --alluredir) to the report as a global attachment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.core.record import Evidence
from harness.core.redact import redact_text, redact_tree
from harness.scenarios import run_handshake
from harness.scenarios.fault_checks import HOST, timed


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


@dataclass
class FaultBench:
    """The fixtures a fault test uses, bound together: set a fault and open
    its matrix row in one step, run a timed handshake on the session's
    Gateway with its evidence recorded. The client under test stays the
    test's own `client_name` argument, so the test ids are the parametrized ones."""

    mock: Any
    gateway: Any
    client_factory: Callable[..., Any]
    matrix: FaultMatrix
    record_evidence: Callable[[Evidence], Path]

    @property
    def port(self) -> int:
        return int(self.gateway.endpoint.port)

    @contextmanager
    def case(self, fault: str, client: str, expected: str, *, set_fault: bool = True) -> Iterator[FaultRow]:
        """Set `fault` on the mock (set_fault=False: a control row, or the fault is already set)
        and record its row."""
        if set_fault:
            self.mock.set_fault(fault)
        with self.matrix.case(fault, client, expected) as row:
            yield row

    async def connect(self, client: str, client_id: int, timeout: float) -> tuple[Any, Any]:
        """A new adapter for `client`, connected; the adapter and its ConnectResult."""
        adapter = self.client_factory(client)
        return adapter, await adapter.connect(HOST, self.port, client_id, timeout=timeout)

    async def handshake(self, client: Any, client_id: int, timeout: float, *,
                        record: bool = True) -> tuple[Evidence, float]:
        """run_handshake (client: an adapter, or a name for the factory), timed; with
        record, the Gateway-side transcript is attached and the evidence written."""
        adapter = self.client_factory(client) if isinstance(client, str) else client
        evidence, elapsed = await timed(run_handshake(self.gateway.endpoint, adapter, client_id, timeout=timeout,
                                                      transcript=self.gateway.transcript if record else None))
        if record:
            self.record_evidence(evidence)
        return evidence, elapsed


@pytest.fixture
def fault_bench(mock_gateway: Any, gateway: Any, client_factory: Callable[..., Any], fault_matrix: FaultMatrix,
                record_evidence: Callable[[Evidence], Path]) -> FaultBench:
    return FaultBench(mock_gateway, gateway, client_factory, fault_matrix, record_evidence)


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
