"""One logging setup (harness/core/log_setup.py) with one format, used by
every entry point; library code logs instead of printing."""

from __future__ import annotations

import ast
import io
import logging
from collections.abc import Iterator

import pytest

from harness.core.log_setup import FORMAT, setup_logging
from tests.support import ROOT

HARNESS = ROOT / "harness"
# Library code prints nothing: what a user must see even inside a pytest run (a dead run's containers
# removed, a container still logging in, plots not drawn, a served mock's listening line) goes through
# harness/core/notices.py. A new print() in library code fails this test: log, or say it as a notice.
KNOWN_PRINTS: dict[str, int] = {}


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


def test_notices_reach_stderr_by_default_and_a_host_s_sink_when_set(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.core import notices

    notices.notice("ibgw: one line for the user")
    assert capsys.readouterr().err == "ibgw: one line for the user\n"
    seen: list[str] = []
    previous = notices.set_sink(seen.append)
    try:
        notices.notice("ibgw: to the host's terminal")
    finally:
        assert notices.set_sink(previous) == seen.append
    assert seen == ["ibgw: to the host's terminal"] and capsys.readouterr().err == ""
    notices.banner("mock Gateway listening on 127.0.0.1:4002")
    assert capsys.readouterr().out == "mock Gateway listening on 127.0.0.1:4002\n"
