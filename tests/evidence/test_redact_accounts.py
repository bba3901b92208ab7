"""The account-id pattern, the ids-seen registry and log-record redaction.

Why: ibapi's protobuf-era log lines carry b'...\\x12\\tDU1234567' (no word
boundary before the id), and lower-case ids, ids followed by "_x" or
preceded by letters all passed the old pattern into reports. Ids the
process has seen are now hidden exactly, in any case, anywhere; log records
redact themselves whichever handler writes them.
"""

from __future__ import annotations

import logging
import warnings

import pytest

from harness.core import redact
from harness.core.redact import (
    ACCOUNT_ID_RE,
    RedactingLogRecord,
    install_log_redaction,
    redact_text,
    remember_accounts,
    unredacted_message,
)
from harness.evidence.report_redaction import redact_warning
from tests.support.processes import run_cli


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ids seen: what other tests in this process planted stays out."""
    monkeypatch.setattr(redact, "_known", set())
    monkeypatch.setattr(redact, "_known_re", None)


@pytest.mark.parametrize("text, expected", [
    (r"len 31 raw:b'\x08\x01\x12\tDU1234567\x1a\x03USD'|", r"len 31 raw:b'\x08\x01\x12\tDU…567\x1a\x03USD'|"),
    (r"b'15\x001\x00DU1234567,DF7654321\x00'", r"b'15\x001\x00DU…567,DF…321\x00'"),
    ("DU1234567_x", "DU…567_x"),
    ("acctDU1234567", "acctDU…567"),
    ("du1234567", "du…567"),
    ("account=du1234567;", "account=du…567;"),
    ("U12345678 and F1234567", "U…678 and F…567"),
    ("DU1234567abc", "DU…567abc"),
])
def test_pattern_catches_the_shapes_that_leaked(text: str, expected: str, fresh_registry: None) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "sha256:0f1234567abcdef0", "c0ffee9f12345678", "\\u2026567", "\\U00012345", "DU…567",
    "0000e0d5.6601a2b3.01.01", "port 4002 next id 1234567", "DU1234",
])
def test_pattern_leaves_hex_escapes_and_redacted_ids_alone(text: str, fresh_registry: None) -> None:
    assert not ACCOUNT_ID_RE.search(text)
    assert redact_text(text) == text


def test_ids_seen_are_hidden_exactly_in_any_case_and_context(fresh_registry: None) -> None:
    # a hex digit before a lower-case id defeats the pattern (it protects digests)...
    assert redact_text("0fdu8642097") == "0fdu8642097"
    remember_accounts(["DU8642097", "", "DU111"])  # empty and too-short ids are not kept
    assert redact.known_accounts() == frozenset({"DU8642097"})
    # ...but not an id the process has seen
    assert redact_text("0fdu8642097") == "0fdu…097"
    assert redact_text("xyzDU8642097_x9") == "xyzDU…097_x9"
    assert redact_text(r"\x12\x0bDU8642097") == r"\x12\x0bDU…097"


def test_log_records_redact_themselves_and_keep_their_template() -> None:
    install_log_redaction()
    install_log_redaction()  # idempotent
    logger = logging.getLogger("test_redact_accounts")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)
            self.format(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        logger.warning("frame %s", r"b'\x12\tDU1234567'")
        try:
            raise ValueError("account du1234567 refused")
        except ValueError:
            logger.exception("failed for %s", "DU1234567")
    finally:
        logger.removeHandler(handler)
    first, second = records
    assert isinstance(first, RedactingLogRecord)
    assert first.getMessage() == r"frame b'\x12\tDU…567'"
    assert first.msg == "frame %s" and unredacted_message(first) == r"frame b'\x12\tDU1234567'"
    assert second.getMessage() == "failed for DU…567"
    assert second.exc_text and "du…567" in second.exc_text and "1234567" not in second.exc_text
    formatted = logging.Formatter().format(second)
    assert "Traceback" in formatted and "1234567" not in formatted


def test_a_recorded_warning_is_redacted_before_the_summary_formats_it() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("a warning naming DU1234567", UserWarning, stacklevel=1)
    [warning] = caught
    redact_warning(warning)
    text = warnings.formatwarning(str(warning.message), warning.category, warning.filename, warning.lineno,
                                  warning.line)
    assert "DU…567" in text and "1234567" not in text


@pytest.mark.parametrize("accounts", ["U7654321", "DU1111111,U7654329", "du7654321", "ZZ12345678",
                                      "DU7654321,,F7654328", "DU7654321,DU7654321"])
def test_mock_serve_never_echoes_a_refused_id_in_full(accounts: str) -> None:
    proc = run_cli("mock", "serve", "--port", "0", "--accounts", accounts)
    assert proc.returncode == 2
    assert "Invalid value for '--accounts'" in proc.stderr and "Traceback" not in proc.stderr
    for account in accounts.split(","):
        digits = "".join(c for c in account if c.isdigit())
        if len(digits) >= 5:
            assert digits not in proc.stdout + proc.stderr, proc.stderr


def test_a_known_id_inside_a_longer_digit_run_masks_the_whole_run(fresh_registry: None) -> None:
    remember_accounts(["U1234567"])
    assert redact_text("U12345678 and 0fu12345670") == "U…678 and 0fu…670"
    assert redact_text("x", ["DU7654321"]) == "x" and redact_text("DU76543210", ["DU7654321"]) == "DU…210"
