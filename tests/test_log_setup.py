"""One logging setup (harness/core/log_setup.py) with one format, used by
every entry point; library code logs instead of printing."""

from __future__ import annotations

import ast
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.core.log_setup import FORMAT, setup_logging

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "harness"
# print() still in library code, each with why it is not a log record yet: a notice the user must
# see inside a pytest run, where pytest's log capture would swallow a record outside a test (the sweep
# of a dead run's containers, a container's login progress, the plots that could not be drawn), a
# progress printer writing to the stream it was given, and the mock's "listening" line its container
# entry point prints. A new print() in library code fails this test: log instead.
KNOWN_PRINTS = {
    "harness/targets/docker_engine.py": 2,
    "harness/targets/container_target.py": 1,
    "harness/evidence/session_report.py": 1,
    "harness/evidence/soak_outputs.py": 1,
    "harness/mock/serve.py": 1,
}


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_a_second_call_replaces_its_handler_and_uses_the_one_format(root_logger: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging(logging.INFO, stream=first)
    handler = setup_logging(logging.INFO, stream=second, levels={"harness.test_log_setup": logging.DEBUG})
    ours = [h for h in root_logger.handlers if isinstance(h, logging.StreamHandler) and h.stream in (first, second)]
    assert ours == [handler]
    assert handler is not None and handler.formatter is not None and handler.formatter._fmt == FORMAT
    logging.getLogger("harness.test_log_setup").debug("hello %s", "there")
    assert second.getvalue().rstrip().endswith("DEBUG harness.test_log_setup: hello there")
    assert first.getvalue() == ""


def test_if_unconfigured_leaves_a_configured_root_alone(root_logger: logging.Logger) -> None:
    foreign = logging.NullHandler()
    root_logger.addHandler(foreign)
    before = list(root_logger.handlers), root_logger.level
    assert setup_logging(logging.DEBUG, if_unconfigured=True) is None
    assert (list(root_logger.handlers), root_logger.level) == before


def test_quiet_sends_records_nowhere(root_logger: logging.Logger) -> None:
    handler = setup_logging(None, quiet=True)
    assert isinstance(handler, logging.NullHandler) and handler in root_logger.handlers


def _library_prints() -> dict[str, int]:
    """print() calls in harness/ outside harness/cli and outside a module's main()."""
    found: dict[str, int] = {}
    for path in sorted(HARNESS.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("harness/cli/"):
            continue
        tree = ast.parse(path.read_text())
        in_main: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "main":
                in_main |= {id(inner) for inner in ast.walk(node)}
        count = sum(1 for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "print" and id(node) not in in_main)
        if count:
            found[rel] = count
    return found


def test_library_code_logs_instead_of_printing() -> None:
    assert _library_prints() == KNOWN_PRINTS


def test_no_entry_point_configures_logging_its_own_way() -> None:
    own = []
    for path in HARNESS.rglob("*.py"):
        if path.name == "log_setup.py":
            continue
        text = path.read_text()
        if "basicConfig(" in text or "logging.Formatter(" in text or "StreamHandler(" in text:
            own.append(path.relative_to(ROOT).as_posix())
    assert not own, f"use harness.core.log_setup.setup_logging in: {own}"
