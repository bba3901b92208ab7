"""Every link on the report's first screen opens inside the single-file
report: a rejected build's evidence opens its matrix cell's page on the
Attachments tab (`#<id>/attachments`), where the report embeds the evidence.
Never a file path: the report is sent around without reports/evidence/.
The browser side (the click, the evidence shown) is tests/evidence/test_report.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.evidence.first_screen import first_screen_html

CELL_ID = "4f3f41160035bda347e4619267d37cc8"


def _result(path: Path, client: str, attachments: list[str]) -> None:
    labels = [{"name": "feature", "value": "version matrix"}, {"name": "gateway_version", "value": "10.41"},
              {"name": "client", "value": client}, {"name": "gateway_regression", "value": "10.41"}]
    step = {"name": "zombie", "attachments": [{"name": n, "source": f"{n}.json"} for n in attachments]}
    data = {"name": f"matrix cell 10.41 / {client}", "status": "failed", "labels": labels, "steps": [step]}
    path.write_text(json.dumps(data), encoding="utf-8")


def _pinning() -> dict[str, object]:
    cell = {"version": "10.41", "scenario": "zombie", "status": "fail", "passed": 0, "runs": 1,
            "causes": ["server_version: API wedged: run 1 failed at server_version"]}
    return {"status": "recommended", "recommended": "10.50", "reason": "10.50 is the newest version whose every "
            "cell passed", "rejected": {"10.41": "ib_async x zombie: fail 0/1 (API wedged)"},
            "cells": [{**cell, "client": "ib_async", "evidence": ["reports/evidence/matrix/a-zombie.json"]},
                      {**cell, "client": "raw", "evidence": ["reports/evidence/matrix/b-zombie.json"]}]}


def test_evidence_links_open_the_cell_s_attachments_inside_the_report(tmp_path: Path) -> None:
    results, output = tmp_path / "allure-results", tmp_path / "html"
    results.mkdir()
    output.mkdir()
    _result(results / "a-result.json", "ib_async", ["handshake.evidence.json", "zombie.evidence.json"])
    _result(results / "b-result.json", "raw", [])  # in the report, but without the evidence attached
    (output / "test-results.json").write_text(json.dumps({"byId": {
        CELL_ID: {"name": "matrix cell 10.41 / ib_async"}, "0badc0de": {"name": "matrix cell 10.41 / raw"}}}))
    block = first_screen_html(results, output, _pinning(), None)
    hrefs = re.findall(r'href="([^"]*)"', block)
    assert hrefs and all(h.startswith("#") for h in hrefs), hrefs
    assert (f'data-testid="ibgw-evidence" data-attachment="zombie.evidence.json" href="#{CELL_ID}/attachments">'
            "ib_async x zombie: zombie.evidence.json</a>") in block
    assert "raw x zombie: zombie.evidence.json (not in this report)" in block  # named, not a dead file link
    assert "reports/evidence" not in block
