"""The evidence a scenario returns: one JSON-serialisable record per run.

Why a fixed shape: the allure report, the plain-text summary, the pinning
report and a human reading a file by hand all consume the same record, so
a value measured once is never recomputed or re-derived somewhere else.
Account ids are redacted when the record is serialised, whichever layer
put them there.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .files import atomic_write_text
from .redact import redact_tree

PASSED = "passed"
FAILED = "failed"


@dataclass
class Evidence:
    scenario: str  # handshake | account_sync | ...
    target: dict[str, Any]  # Endpoint.to_dict()
    client: dict[str, Any]  # ClientInfo as a dict
    parameters: dict[str, Any] = field(default_factory=dict)
    outcome: str = FAILED
    failed_phase: str | None = None
    cause: str | None = None
    hint: str | None = None
    server_version: int | None = None
    connect: dict[str, Any] = field(default_factory=dict)  # ConnectResult.to_dict()
    measurements: dict[str, float] = field(default_factory=dict)  # names end in _ms or _count
    checks: dict[str, bool] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # scenario-specific tables (per-run rows, ...)
    transcript: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    duration_s: float = 0.0
    _t0: float = field(default_factory=time.monotonic, repr=False)

    @property
    def ok(self) -> bool:
        return self.outcome == PASSED

    def finish(self) -> Evidence:
        self.duration_s = round(time.monotonic() - self._t0, 6)
        return self

    @property
    def category(self) -> str | None:
        """The failure's cause category (evidence.categories), None when passed."""
        from .categories import categorize  # lazy: categories is a leaf module of core

        return categorize(asdict(self))

    def summary_line(self) -> str:
        """One line a human reads first: what failed, where, why. A failure
        starts with its [category], which the report's categories.json
        matches on."""
        if self.ok:
            return f"{self.scenario} via {self.client.get('name')}: passed (server version {self.server_version})"
        from .categories import prefix

        return (f"{prefix(self.category or 'unclassified')} {self.scenario} via {self.client.get('name')}: "
                f"FAILED at {self.failed_phase}: {self.cause}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_t0", None)
        return redact_tree(data, _account_ids(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    def write(self, directory: Path, name: str) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{_safe(name)}.json"
        # Temporary file + rename: a run killed mid-write leaves the old
        # file or the new one, never half a JSON (a stale .tmp is swept).
        return atomic_write_text(path, self.to_json() + "\n")


def _account_ids(evidence: Evidence) -> set[str]:
    """Ids the connect result named; anything id-shaped elsewhere is caught
    by redact_tree's pattern as well."""
    return set(evidence.connect.get("accounts") or [])


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150] or "evidence"
