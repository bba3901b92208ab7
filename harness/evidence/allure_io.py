"""Evidence into allure: labels a person filters by, measured values as
parameters excluded from the history id, and the JSON and transcript as
attachments.

allure-pytest is imported lazily so the evidence layer stays importable
without pytest (the CLI writes the same JSON files).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .record import Evidence


def _allure() -> Any:
    try:
        import allure
    except ImportError:  # allure-pytest absent: evidence still goes to JSON files
        return None
    return allure


def attach_evidence(evidence: Evidence, path: Path) -> None:
    allure = _allure()
    if allure is None:
        return
    target, client = evidence.target, evidence.client
    allure.dynamic.epic("Gateway connection")
    allure.dynamic.feature(evidence.scenario)
    allure.dynamic.label("gateway_target", target.get("kind", "?"))
    allure.dynamic.label("gateway_version", target.get("build", "unknown"))
    allure.dynamic.label("client", client.get("name", "?"))
    allure.dynamic.label("client_version", f"{client.get('package')} {client.get('version')}")
    if evidence.server_version is not None:
        allure.dynamic.label("server_version", str(evidence.server_version))
    # Measured values vary run to run: excluded from the history id so the
    # test keeps one history across runs.
    for name, value in sorted(evidence.measurements.items()):
        allure.dynamic.parameter(name, value, excluded=True)
    if evidence.failed_phase:
        allure.dynamic.parameter("failed_phase", evidence.failed_phase, excluded=True)
    allure.attach(path.read_text(encoding="utf-8"), name="evidence.json",
                  attachment_type=allure.attachment_type.JSON)
    if evidence.transcript:
        text = json.loads(path.read_text(encoding="utf-8")).get("transcript") or ""
        allure.attach(text, name="transcript.txt", attachment_type=allure.attachment_type.TEXT)


def write_allure_environment(alluredir: Path, props: dict[str, str]) -> None:
    """environment.properties, written at session end (after allure has
    cleaned its directory at start-up, so it survives)."""
    alluredir.mkdir(parents=True, exist_ok=True)
    lines = [f"{key}={_escape(value)}" for key, value in props.items()]
    (alluredir / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", " ")
