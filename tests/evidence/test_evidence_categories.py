"""Unit tests of the evidence -> category mapping, the categories.json
rules, credential redaction and the pieces `make report` prints, without
a subprocess (tests/evidence/test_report.py runs the whole chain)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.core import categories as c
from harness.core.record import Evidence
from harness.core.redact import SECRET_MASK, redact_secrets, redact_text
from harness.evidence.allure_io import runs_table
from harness.evidence.artifacts import describe
from harness.evidence.html_report import ReportError, generate
from harness.evidence.report_redaction import redact_report


def _failed(phase: str | None, **extra: object) -> dict:
    return {"outcome": "failed", "failed_phase": phase, "client": {"name": "raw", "min_version": 100}, **extra}


@pytest.mark.parametrize("record, expected", [
    (_failed("tcp_connect", cause="[Errno 111] Connection refused"), c.GATEWAY_UNREACHABLE),
    (_failed("server_version", cause="no answer within 2 s"), c.HANDSHAKE_UNANSWERED),
    (_failed("server_version", cause="closed", client={"name": "raw", "min_version": 157},
             transcript="# connection 1\n# closed: client needs server version >= 157, this Gateway supports at "
                        "most 150"), c.BUILD_TOO_OLD),
    (_failed("server_version", cause="TWS/gateway version must be >= 972"), c.BUILD_TOO_OLD),
    (_failed("next_valid_id", cause="no nextValidId"), c.API_NOT_READY),
    (_failed("managed_accounts", cause="managedAccounts empty"), c.API_NOT_READY),
    (_failed("next_valid_id", connect={"messages": [{"req_id": -1, "code": 326, "message": "in use"}]}),
     c.CLIENT_ID_STUCK),
    (_failed("account_sync", cause="missing positions_end"), c.STARTUP_SYNC_INCOMPLETE),
    (_failed("first_account_value"), c.STARTUP_SYNC_INCOMPLETE),
    (_failed(None, checks={"positions_end": False, "accounts_non_empty": True}), c.STARTUP_SYNC_INCOMPLETE),
    (_failed("harness", cause="worker printed nothing"), c.HARNESS_ERROR),
    # A soak too short to judge a fault's recovery blames the run, not the Gateway.
    (_failed("soak configuration", cause="the run ended 3.0 s after the restart fault"), c.RUN_CONFIGURATION),
    (_failed("soak", cause="raw: never recovered"), c.HEALTH_LOST_OVER_TIME),
    (_failed("server_version", details={"runs": [{"ok": True}, {"ok": False, "failed_phase": "server_version"}]},
             measurements={"close_wait_baseline_count": 0, "close_wait_max_count": 3, "close_wait_final_count": 3}),
     c.ZOMBIE_SOCKETS),
    # A spike that drained by the last run is a slow close, not a leak: the failed run's phase decides.
    (_failed("server_version", details={"runs": [{"ok": True}, {"ok": False, "failed_phase": "server_version"}]},
             measurements={"close_wait_baseline_count": 0, "close_wait_max_count": 2, "close_wait_final_count": 0}),
     c.HANDSHAKE_UNANSWERED),
    (_failed("next_valid_id", details={"runs": [{"ok": True}, {"ok": False, "failed_phase": "next_valid_id",
                                                              "cause": "client id already in use (error 326)"}]},
             measurements={"close_wait_baseline_count": 0, "close_wait_max_count": 0}), c.CLIENT_ID_STUCK),
    (_failed("server_version", details={"runs": [{"ok": True}, {"ok": False, "failed_phase": "server_version"}]},
             measurements={"close_wait_baseline_count": 1, "close_wait_max_count": 1}), c.HANDSHAKE_UNANSWERED),
    (_failed("somewhere_new"), c.UNCLASSIFIED),
    ({"outcome": "passed", "failed_phase": None}, None),
])
def test_category_comes_from_the_evidence(record: dict, expected: str | None) -> None:
    assert c.categorize(record) == expected


def test_a_fault_name_in_the_cause_does_not_decide_the_category() -> None:
    """Text naming another cause changes nothing: the phase decides."""
    record = _failed("next_valid_id", cause="zombie sockets close-wait-leak silent-handshake build too old")
    assert c.categorize(record) == c.API_NOT_READY


def test_summary_line_starts_with_the_category_the_rules_match() -> None:
    evidence = Evidence("handshake", {"kind": "mock"}, {"name": "raw"}, failed_phase="server_version",
                        cause="no answer")
    line = evidence.summary_line()
    assert line.startswith("[handshake unanswered] ")
    rules = c.categories_json()
    assert c.match_category(rules, "failed", f"AssertionError: {line}\nassert False") == c.HANDSHAKE_UNANSWERED
    assert c.match_category(rules, "passed", f"AssertionError: {line}") is None
    # A test that failed on something else entirely: no harness category claims it.
    assert c.match_category(rules, "failed", "AssertionError: assert 1 == 2") is None
    assert c.match_category(rules, "broken", "ValueError: bad", "Traceback ...") == c.HARNESS_ERROR
    assert c.match_category(rules, "broken", "OSError", "ConnectionRefusedError: [Errno 111]") == c.GATEWAY_UNREACHABLE


def test_category_regexes_read_the_same_in_javascript_and_java() -> None:
    """Only portable syntax: no inline flags, no Python-only escapes; wrapped
    so Allure 2's whole-message match and Allure 3's search both work."""
    for rule in c.categories_json():
        for key in ("messageRegex", "traceRegex"):
            if key in rule:
                assert rule[key].startswith(r"[\s\S]*") and rule[key].endswith(r"[\s\S]*")
                assert "(?" not in rule[key] and "\\ " not in rule[key]
    assert {r["name"] for r in c.categories_json()} == set(c.CATEGORY_TEXT)


def test_secrets_from_the_environment_are_masked() -> None:
    env = {"TWS_PASSWORD": "correct-horse", "TWS_USERID": "jdoe123", "HOME": "/root", "SHORT_TOKEN": "ab"}
    text = "login jdoe123 / correct-horse in /root"
    assert redact_secrets(text, env) == f"login {SECRET_MASK} / {SECRET_MASK} in /root"


def test_redact_text_masks_a_planted_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWS_PASSWORD", "Hunter2-planted")
    assert redact_text("pw=Hunter2-planted acct DU1234567") == "pw=*** acct DU\u2026567"


def test_account_in_a_logged_wire_frame_is_masked() -> None:
    # ibapi logs frames as bytes reprs: "\\x00" right before the id leaves no word boundary.
    logged = r"SENDING reqAccountUpdates b'\x00\x00\x00\x106\x002\x001\x00DU9753124\x00'"
    assert "DU9753124" not in redact_text(logged) and "DU\u2026124" in redact_text(logged)


def test_pytest_report_text_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IB_PASSWORD", "s3cret-value")
    report = SimpleNamespace(sections=[("Captured log call", "accounts DU1234567 pw s3cret-value")],
                             longrepr="assert DU1234567 == x", longreprtext="assert DU1234567 == x")
    exc = AssertionError("[API not ready] DU1234567")
    redact_report(report, SimpleNamespace(excinfo=SimpleNamespace(value=exc)))
    assert report.sections == [("Captured log call", "accounts DU\u2026567 pw ***")]
    assert report.longrepr == "assert DU\u2026567 == x"
    assert str(exc) == "[API not ready] DU\u2026567"


def test_runs_table_lists_every_run_and_the_counts() -> None:
    rows = [{"run": 1, "client_id": 60, "ok": True, "api_ready_ms": 1.25, "close_wait_after": 0},
            {"run": 2, "client_id": 60, "ok": False, "failed_phase": "server_version", "cause": "no answer",
             "close_wait_after": 3}]
    text = runs_table(rows, {"close_wait_baseline_count": 0, "close_wait_max_count": 3, "close_wait_final_count": 3})
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["run", "client"]
    assert "1.2" in lines[1] and lines[2].split()[2] == "NO" and "server_version: no answer" in lines[2]
    assert lines[-1] == "CLOSE_WAIT baseline 0, max 3, final 3"


def test_artifacts_say_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "a.json").write_text("{}")
    (tmp_path / "history.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    rows = {what: note for what, _, note in describe(tmp_path)}
    assert rows["evidence JSON"] == "1 files"
    assert rows["report history"] == "2 runs"
    assert rows["HTML report"] == "MISSING" and rows["JUnit XML"] == "MISSING"


def test_generate_without_results_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no allure results"):
        generate(tmp_path / "none", tmp_path / "html", tmp_path / "h.jsonl", tools_dir=_fake_tools(tmp_path))


def test_generate_refuses_to_delete_a_directory_that_is_not_a_report(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "x-result.json").write_text(json.dumps({"name": "t"}))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ReportError, match="does not look like a report"):
        generate(results, precious, tmp_path / "h.jsonl", tools_dir=_fake_tools(tmp_path))
    assert (precious / "notes.txt").exists()


def _fake_tools(tmp_path: Path) -> Path:
    tools = tmp_path / "tools"
    (tools / "node_modules" / "allure").mkdir(parents=True)
    (tools / "node_modules" / "allure" / "cli.js").write_text("")
    return tools
