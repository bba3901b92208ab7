"""Which Gateway version to pin, decided from evidence files alone.

Why results only, never profile metadata: the decision must hold for a real
Gateway as much as for the mock, so it may use nothing a real run cannot
produce. It merges any number of results directories (one per Gateway
install: the matrix, a desktop Gateway run with --gateway-version, a
container run) into one table of version x client x scenario ->
pass / fail / flaky / missing, with handshake p50/p95, and one decision:

- per client and overall, the newest version whose every cell passed;
- each newer version's rejection reason (the failing cells);
- builds too old for a client (their maximum server version is below the
  client's minimum) listed apart from regressions;
- a candidate with missing cells makes the answer "inconclusive", never a pass.

Records of injected faults (`parameters.fault`: detector self-tests) say
nothing about a build and are skipped. Records of a cell whose Docker engine
went away mid-run (`parameters.engine_lost`) say nothing about the build
either: the cell is missing (so its version can only be inconclusive), with
the lost engine as its cause. When the matrix ran on several engines
(`parameters.engine`), every cell names the engine(s) that ran it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import HarnessError
from .text import shorten, was_shortened

PASS, FAIL, FLAKY, MISSING, TOO_OLD = "pass", "fail", "flaky", "missing", "too-old"
PROBE = "version_probe"
RECOMMENDED, INCONCLUSIVE, NONE = "recommended", "inconclusive", "none"


class PinInputError(HarnessError, ValueError):
    """No usable results: the message says what was read and what to run."""


# ---------------------------------------------------------------- reading


def version_key(record: dict[str, Any]) -> str | None:
    """The Gateway version a record judged: the matrix's `gateway_version`,
    else X.Y of the build the target reported (or the run declared)."""
    declared = (record.get("parameters") or {}).get("gateway_version")
    if declared:
        return str(declared)
    build = str((record.get("target") or {}).get("build") or "")
    match = re.match(r"(\d+)\.(\d+)", build)
    if match:
        return f"{match.group(1)}.{match.group(2)}"
    match = re.match(r"(\d{3,4})\b", build)  # pre-10 builds: 981, 1012
    return match.group(1) if match else None


def version_order(version: str) -> tuple[int, ...]:
    nums = [int(n) for n in re.findall(r"\d+", version)]
    if len(nums) == 1 and nums[0] >= 100:  # 981 -> 9.81, 1012 -> 10.12
        return (nums[0] // 100, nums[0] % 100)
    return tuple(nums) or (0,)


def load_records(paths: list[Path]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Evidence records under the given files/directories (recursively), and counts of what was skipped."""
    records: list[dict[str, Any]] = []
    skipped: dict[str, int] = defaultdict(int)
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*.json"))
        for path in files:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                skipped["unreadable"] += 1
                continue
            if not isinstance(data, dict) or "scenario" not in data or "outcome" not in data:
                skipped["not evidence"] += 1
                continue
            if (data.get("parameters") or {}).get("fault"):
                skipped["injected fault (detector self-test)"] += 1
                continue
            if version_key(data) is None:
                skipped["no Gateway version (run with --gateway-version)"] += 1
                continue
            data["_source"] = str(path)  # the evidence link a failing cell shows
            records.append(data)
    return records, dict(skipped)


# ---------------------------------------------------------------- the table


@dataclass
class Cell:
    version: str
    client: str
    scenario: str
    status: str  # pass | fail | flaky | missing | too-old
    runs: int = 0
    passed: int = 0
    causes: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # the failing runs' evidence files
    engines: list[str] = field(default_factory=list)  # the Docker engine(s) that ran it (parameters.engine)

    @property
    def text(self) -> str:
        if self.status in (PASS, MISSING):
            return self.status if self.runs <= 1 else f"{self.status} {self.passed}/{self.runs}"
        return f"{self.status} {self.passed}/{self.runs}"


@dataclass
class VersionInfo:
    version: str
    builds: list[str]
    max_server_version: int | None  # from the version-only probe
    probe: str  # pass | fail | missing
    probe_cause: str = ""


@dataclass
class Decision:
    scope: str  # a client name, or "overall"
    status: str  # recommended | inconclusive | none
    version: str | None
    reason: str
    rejected: dict[str, str] = field(default_factory=dict)  # version -> why not (a regression, or older)
    too_old: dict[str, str] = field(default_factory=dict)  # version -> why (too old for the client)


def _client_key(record: dict[str, Any], multi: set[str]) -> str:
    client = record.get("client") or {}
    name = str(client.get("name", "?"))
    return f"{name} {client.get('version', '?')}" if name in multi else name


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def engine_of(record: dict[str, Any]) -> str | None:
    engine = (record.get("parameters") or {}).get("engine")
    return str(engine) if engine else None


def is_engine_lost(record: dict[str, Any]) -> bool:
    return bool((record.get("parameters") or {}).get("engine_lost"))


class PinTable:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        lost = [r for r in records if is_engine_lost(r)]
        records = [r for r in records if not is_engine_lost(r)]
        probes = [r for r in records if r.get("scenario") == PROBE]
        cells = [r for r in records if r.get("scenario") != PROBE]
        names: dict[str, set[str]] = defaultdict(set)
        for r in cells:
            client = r.get("client") or {}
            names[str(client.get("name", "?"))].add(str(client.get("version", "?")))
        multi = {n for n, versions in names.items() if len(versions) > 1}
        lost_cells = [r for r in lost if r.get("scenario") != PROBE]
        judged = {v for v in map(version_key, records + lost) if v is not None}
        self.versions = sorted(judged, key=version_order, reverse=True)
        self.clients = sorted({_client_key(r, multi) for r in cells + lost_cells})
        self.scenarios = sorted({str(r["scenario"]) for r in cells + lost_cells})
        # (version, client, scenario) -> why its engine was lost (the cell stays missing), and
        # -> the engine(s) that ran it; the probe's key is (version, PROBE, PROBE)
        self.lost: dict[tuple[str, str, str], str] = {}
        self.engines: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for r in lost:
            client = _client_key(r, multi) if r.get("scenario") != PROBE else PROBE
            key = (version_key(r) or "?", client, str(r["scenario"]))
            self.lost[key] = str(r.get("cause") or "the Docker engine went away")
            if engine_of(r):
                self.engines[key].add(str(engine_of(r)))
        for r in records:
            if engine_of(r):
                client = _client_key(r, multi) if r.get("scenario") != PROBE else PROBE
                key = (version_key(r) or "?", client, str(r["scenario"]))
                self.engines[key].add(str(engine_of(r)))
        self.client_min: dict[str, int] = {}
        grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        ready: dict[tuple[str, str], list[float]] = defaultdict(list)
        builds: dict[str, set[str]] = defaultdict(set)
        for r in records + lost:
            if not is_engine_lost(r) or version_key(r) not in builds:
                builds[version_key(r) or "?"].add(str((r.get("target") or {}).get("build", "?")))
        for r in cells:
            key = (version_key(r) or "?", _client_key(r, multi), str(r["scenario"]))
            grouped[key].append(r)
            low = (r.get("client") or {}).get("min_version")
            if isinstance(low, int):
                self.client_min[key[1]] = max(low, self.client_min.get(key[1], 0))
            ms = (r.get("measurements") or {}).get("api_ready_ms")
            if r["scenario"] == "handshake" and r.get("outcome") == "passed" and isinstance(ms, (int, float)):
                ready[key[:2]].append(float(ms))
            # Each passed run of a consecutive-run scenario is one more
            # connect-to-API-ready sample, so p50 and p95 rest on more than one.
            for run in (r.get("details") or {}).get("runs") or []:
                if isinstance(run, dict) and run.get("ok") and isinstance(run.get("api_ready_ms"), (int, float)):
                    ready[key[:2]].append(float(run["api_ready_ms"]))
        self.info = {v: self._version_info(v, [p for p in probes if version_key(p) == v], builds[v])
                     for v in self.versions}
        for v, info in self.info.items():
            if info.probe == MISSING and (v, PROBE, PROBE) in self.lost:
                info.probe_cause = self.lost[(v, PROBE, PROBE)]
        self.cells = {(v, c, s): self._cell(v, c, s, grouped.get((v, c, s), []))
                      for v in self.versions for c in self.clients for s in self.scenarios}
        self.ready = {k: (_pct(vals, 0.5), _pct(vals, 0.95)) for k, vals in ready.items()}
        self.samples = {k: len(vals) for k, vals in ready.items()}

    @staticmethod
    def _version_info(version: str, probes: list[dict[str, Any]], builds: set[str]) -> VersionInfo:
        maxima: list[int] = [p["server_version"] for p in probes if isinstance(p.get("server_version"), int)]
        failed = [p for p in probes if p.get("outcome") != "passed"]
        probe = MISSING if not probes else (FAIL if failed else PASS)
        cause = str(failed[0].get("cause") or "") if failed else ""
        return VersionInfo(version, sorted(builds), max(maxima) if maxima else None, probe, cause)

    def _cell(self, version: str, client: str, scenario: str, runs: list[dict[str, Any]]) -> Cell:
        engines = sorted(self.engines.get((version, client, scenario), ()))
        if not runs:
            lost = self.lost.get((version, client, scenario))
            return Cell(version, client, scenario, MISSING, causes=[f"engine_lost: {lost}"] if lost else [],
                        engines=engines)
        passed = sum(1 for r in runs if r.get("outcome") == "passed")
        causes = sorted({f"{r.get('failed_phase')}: {r.get('cause')}" for r in runs if r.get("outcome") != "passed"})
        status = PASS if passed == len(runs) else FAIL if passed == 0 else FLAKY
        if status != PASS and self._too_old(version, client, runs):
            status = TOO_OLD
        evidence = sorted({str(r["_source"]) for r in runs if r.get("outcome") != "passed" and r.get("_source")})
        return Cell(version, client, scenario, status, len(runs), passed, causes, evidence, engines)

    def _too_old(self, version: str, client: str, runs: list[dict[str, Any]]) -> bool:
        """The build's maximum (probe, else what it negotiated) is below the client's minimum."""
        floor = self.client_min.get(client)
        if floor is None:
            return False
        built_max = self.info[version].max_server_version if version in self.info else None
        seen: list[int] = [r["server_version"] for r in runs if isinstance(r.get("server_version"), int)]
        top = built_max if built_max is not None else (max(seen) if seen else None)
        return top is not None and top < floor

    # ------------------------------------------------------------ deciding

    def decide(self, clients: list[str], scope: str) -> Decision:
        """Judge every version for these clients, then pick the newest that
        passed everything; every other version gets its reason."""
        decision = Decision(scope, NONE, None, "no version passed every cell")
        complete: list[str] = []  # passed every cell it has, none missing
        incomplete: dict[str, list[Cell]] = {}
        for version in self.versions:
            cells = [self.cells[(version, c, s)] for c in clients for s in self.scenarios]
            old = [c for c in cells if c.status == TOO_OLD]
            bad = [c for c in cells if c.status in (FAIL, FLAKY)]
            info = self.info[version]
            if old:
                decision.too_old[version] = "too old for " + ", ".join(sorted({
                    f"{c.client} (needs server version >= {self.client_min.get(c.client)}, build max "
                    f"{info.max_server_version})" for c in old}))
            if bad or info.probe == FAIL:
                # Whole causes: a table shortens them at a word boundary
                # when it renders (to_markdown, the HTML report's first screen).
                reasons = [f"{c.client} x {c.scenario}: {c.status} {c.passed}/{c.runs}"
                           + (f" ({c.causes[0]})" if c.causes else "") for c in bad]
                if info.probe == FAIL:
                    reasons.insert(0, f"version probe: {info.probe_cause}")
                decision.rejected[version] = "; ".join(reasons)
            elif not old:
                missing = [c for c in cells if c.status == MISSING]
                if missing:
                    incomplete[version] = missing
                else:
                    complete.append(version)
        # The newest version that is neither rejected nor too old decides:
        # complete -> recommended; incomplete -> inconclusive (never a pass).
        candidates = [v for v in self.versions if v in complete or v in incomplete]
        if not candidates:
            return decision
        top = candidates[0]
        if top in incomplete:
            missing = incomplete[top]
            decision.status = INCONCLUSIVE
            lost = sorted({e for c in missing if c.causes for e in c.engines})
            decision.reason = (f"{top} is the newest candidate but {len(missing)} cell(s) have no results ("
                               + ", ".join(f"{c.client} x {c.scenario}" for c in missing[:6])
                               + (f"; engine lost mid-run: {', '.join(lost)}" if lost else "")
                               + "): run them before pinning")
        else:
            decision.status, decision.version = RECOMMENDED, top
            decision.reason = f"{top} is the newest version whose every cell passed"
        for version in candidates[1:]:
            decision.rejected[version] = (f"passed, but older than {top}" if version in complete else
                                          f"incomplete ({len(incomplete[version])} cell(s) missing), older than {top}")
        return decision

    def report(self) -> dict[str, Any]:
        overall = self.decide(self.clients, "overall")
        per_client = {c: asdict(self.decide([c], c)) for c in self.clients}
        return {
            "recommended": overall.version,
            "status": overall.status,
            "reason": overall.reason,
            "rejected": overall.rejected,
            "too_old": overall.too_old,
            "per_client": per_client,
            "versions": [asdict(self.info[v]) | {"engines": sorted(self.engines.get((v, PROBE, PROBE), ()))}
                         for v in self.versions],
            "clients": self.clients,
            "scenarios": self.scenarios,
            "cells": [asdict(c) | {"handshake_p50_ms": self.ready.get((c.version, c.client), (None, None))[0],
                                   "handshake_p95_ms": self.ready.get((c.version, c.client), (None, None))[1],
                                   "handshake_samples": self.samples.get((c.version, c.client), 0)}
                      for c in self.cells.values()],
        }


def build_report(paths: list[Path]) -> dict[str, Any]:
    records, skipped = load_records(paths)
    if not records:
        what = ", ".join(f"{n} {k}" for k, n in skipped.items()) or "no JSON files"
        raise PinInputError(f"no usable evidence in {', '.join(map(str, paths))} ({what}): run the matrix first "
                            "(make report), or pass results directories written by the suites")
    report = PinTable(records).report()
    report["sources"] = [str(p) for p in paths]
    report["records"] = len(records)
    report["skipped"] = skipped
    return report


def cite_wire_diffs(report: dict[str, Any], diffs: dict[str, list[str]]) -> dict[str, Any]:
    """Add what changed on the wire to the reason each regressed version was
    rejected. `diffs` maps a version to the readable changes between the
    recommended build's recording and that version's (harness.recording.diff);
    versions rejected only for being older are left alone."""
    cited: dict[str, list[str]] = {}
    for version, changes in diffs.items():
        why = report["rejected"].get(version)
        if why is None or why.startswith("passed, but older"):
            continue
        cited[version] = changes
        shown = "; ".join(c.strip() for c in changes[:2]) if changes else "no change on the wire"
        more = f" (+{len(changes) - 2} more)" if len(changes) > 2 else ""
        report["rejected"][version] = f"{why}; wire diff vs {report['recommended']}: {shown}{more}"
    report["wire_diffs"] = cited
    return report


# ---------------------------------------------------------------- rendering


def _ms(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"


REASON_WIDTH = 160  # a rejected build's reason in the table; the full text follows it


def ready_text(cell: dict[str, Any]) -> str:
    """p50 / p95 of connect-to-API-ready, or the one sample it rests on."""
    n = cell.get("handshake_samples", 0)
    if not n:
        return "-"
    if n == 1:
        return f"{_ms(cell.get('handshake_p50_ms'))} (1 sample)"
    return f"{_ms(cell.get('handshake_p50_ms'))} / {_ms(cell.get('handshake_p95_ms'))} (n={n})"


def to_markdown(report: dict[str, Any]) -> str:
    scenarios = report["scenarios"]
    cells = {(c["version"], c["client"], c["scenario"]): c for c in report["cells"]}
    info = {v["version"]: v for v in report["versions"]}
    # Several Docker engines: each row names the engine(s) that ran its cells.
    with_engines = any(c.get("engines") for c in report["cells"])
    header = ["version", "build", "max sv", "probe", "client", *(["engine"] if with_engines else []),
              *(f"{s} (passed/runs)" for s in scenarios), "API ready p50 / p95 ms"]
    lines = ["# Gateway pinning report", "",
             "Cells: pass, fail, flaky (some runs passed) or missing, with passed/runs when a cell ran more "
             "than once; `fail 0/1` is one run that failed.", "",
             "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for version in [v["version"] for v in report["versions"]]:
        vi = info[version]
        for client in report["clients"]:
            row_cells = [cells[(version, client, s)] for s in scenarios]
            first = row_cells[0] if row_cells else {}
            marks = []
            for c in row_cells:
                text = c["status"] if c["runs"] <= 1 and c["status"] in (PASS, MISSING) else \
                    f"{c['status']} {c['passed']}/{c['runs']}"
                if c["status"] == MISSING and any(str(cause).startswith("engine_lost") for cause in c["causes"]):
                    text += " (engine lost)"
                marks.append(f"**{text}**" if c["status"] in (FAIL, FLAKY) else text)
            engine = [", ".join(sorted({e for c in row_cells for e in c.get("engines") or []})) or "-"]
            lines.append("| " + " | ".join([
                version, "/".join(vi["builds"]), str(vi["max_server_version"] or "-"), vi["probe"], client,
                *(engine if with_engines else []), *marks, ready_text(first)]) + " |")
    lines += ["", "## Recommendation", ""]
    status, version = report["status"], report["recommended"]
    lines.append(f"**Overall: {version}** ({report['reason']})" if status == RECOMMENDED
                 else f"**Overall: {status.upper()}**: {report['reason']}")
    for client, d in report["per_client"].items():
        lines.append(f"- {client}: " + (f"{d['version']}" if d["status"] == RECOMMENDED
                                        else f"{d['status']}: {shorten(d['reason'], REASON_WIDTH)}"))
    full: dict[str, str] = {}
    if report["rejected"]:
        lines += ["", "### Why not the other versions", ""]
        for v, why in report["rejected"].items():
            short = shorten(why, REASON_WIDTH)
            if was_shortened(short):
                full[v] = why
                short += " (full text below)"
            lines.append(f"- {v}: {short}")
    if report.get("wire_diffs"):
        lines += ["", "### What changed on the wire (recordings)", ""]
        for version, changes in report["wire_diffs"].items():
            lines.append(f"- {report['recommended']} -> {version}:")
            lines += [f"  - {c.strip()}" for c in changes[:20]]
    if report["too_old"]:
        lines += ["", "### Too old for a client (not a regression)", ""]
        lines += [f"- {v}: {why}" for v, why in report["too_old"].items()]
    if full:
        lines += ["", "### Full reasons", ""]
        lines += [f"- {v}: {why}" for v, why in full.items()]
    if report.get("skipped"):
        lines += ["", "Skipped records: " + ", ".join(f"{n} {k}" for k, n in report["skipped"].items())]
    lines += ["", f"Read {report.get('records', '?')} evidence records from {', '.join(report.get('sources', []))}."]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "pinning.md", out_dir / "pinning.json"
    md.write_text(to_markdown(report), encoding="utf-8")
    js.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return md, js
