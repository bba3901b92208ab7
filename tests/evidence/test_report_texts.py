"""Texts in the pinning report and the run summary are never cut mid-word.

A reason cut at a fixed width (`client id 13 is )`) reads as another
sentence. Every reason these outputs show is either the whole text or a
prefix of whole words followed by an ellipsis, and the full text is one
step away (the "Full reasons" list, the evidence file).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.evidence import summary
from harness.evidence.pinning import build_report, to_markdown
from harness.evidence.text import ELLIPSIS, shorten

LONG_CAUSES = [
    "error 326: client id 13 is already in use by a client that left the Gateway minutes ago; the Gateway "
    "closed the socket before nextValidId",
    "run 7 failed at server_version: the Gateway accepted the connection but never answered the version "
    "handshake within 5 s (not logged in, 2FA pending, API layer stalled)",
    "zombie sockets: CLOSE_WAIT on the port stayed at 5 (baseline 2) after every run disconnected cleanly",
]


def _is_whole_or_word_prefix(shown: str, full: str) -> bool:
    """`shown` is `full`, or whole words of it and the ellipsis."""
    full = " ".join(full.split())
    if not shown.endswith(ELLIPSIS):
        return shown == full
    head = shown[: -len(ELLIPSIS)].rstrip()
    return full.startswith(head) and (len(full) == len(head) or full[len(head)] == " "
                                      or not full[len(head)].isalnum())


@pytest.mark.parametrize("width", range(4, 140, 7))
@pytest.mark.parametrize("text", LONG_CAUSES)
def test_shorten_ends_at_a_word_boundary(text: str, width: int) -> None:
    shown = shorten(text, width)
    assert _is_whole_or_word_prefix(shown, text), (width, shown)
    first_word = text.split()[0]
    assert len(shown) <= width or shown.startswith(first_word), "only a single over-long word may exceed the width"


def _record(version: str, client: str, scenario: str, cause: str | None) -> dict:
    return {"scenario": scenario, "outcome": "failed" if cause else "passed",
            "failed_phase": "next_valid_id" if cause else None, "cause": cause,
            "target": {"kind": "mock", "build": f"{version}.1x", "label": f"mock:{version}"},
            "client": {"name": client, "version": "1.0", "min_version": 100, "max_version": 200},
            "server_version": 190, "parameters": {"gateway_version": version, "matrix": True},
            "measurements": {"api_ready_ms": 5.0} if scenario == "handshake" else {}}


def _write(directory: Path, rows: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        (directory / f"suites_test_x.py_test_cell_{i:03d}.json").write_text(json.dumps(row), encoding="utf-8")
    return directory


def test_every_pinning_reason_ends_at_a_word_boundary(tmp_path: Path) -> None:
    rows = []
    for version, causes in (("10.50", [None, None]), ("10.41", LONG_CAUSES[:2]), ("10.30", LONG_CAUSES[1:])):
        for client, cause in zip(("raw", "ib_async"), causes):
            rows += [_record(version, client, s, cause if s == "zombie" else None) for s in ("handshake", "zombie")]
    report = build_report([_write(tmp_path / "m", rows)])
    assert report["recommended"] == "10.50"
    md = to_markdown(report)
    shown = dict(re.findall(r"^- (10\.\d+): (.*)$", md.split("### Why not the other versions")[1].split("###")[0],
                            re.MULTILINE))
    assert set(shown) == {"10.41", "10.30"}
    for version, text in shown.items():
        text = text.removesuffix(" (full text below)")
        assert _is_whole_or_word_prefix(text, report["rejected"][version]), text
        assert text.endswith(ELLIPSIS), "these reasons are long: shortened, with the full text below"
        # the full text is one step away: the list at the end of the report
        assert f"- {version}: {report['rejected'][version]}" in md.split("### Full reasons")[1]


def test_every_summary_cause_ends_at_a_word_boundary_and_rows_name_their_test(tmp_path: Path) -> None:
    rows = [_record("10.41", "raw", "zombie", cause) for cause in LONG_CAUSES]
    rows.append(_record("10.41", "raw", "zombie", LONG_CAUSES[0]))  # a duplicate row
    directory = _write(tmp_path / "e", rows)
    out = summary.table(summary.load(directory))
    lines = out.splitlines()
    header = lines[0]
    cause_at = header.index("failed phase / cause")
    body = [line for line in lines[2:2 + len(rows)]]
    assert len(body) == len(rows)
    for line in body:
        cause = line[cause_at:]
        full = next(f"next_valid_id: {c}" for c in LONG_CAUSES if f"next_valid_id: {c}".startswith(
            cause.removesuffix(ELLIPSIS).rstrip()))
        assert _is_whole_or_word_prefix(cause, full), cause
    assert header.startswith("test "), "a test column when some rows would read the same"
    duplicates = [line for line in body if "next_valid_id: " + LONG_CAUSES[0][:20] in line]
    assert len(duplicates) == 2
    names = [line.split()[0] for line in duplicates]
    assert names == ["test_cell_000", "test_cell_003"], "duplicate rows name the test that wrote them"
    assert all(not line.startswith("test_") for line in body if line not in duplicates), "others stay narrow"
    assert "full cause is in the test's evidence file" in out
