"""Evidence into allure: labels a person filters by, measured values as
parameters excluded from the history id, one step per handshake phase with
its measured time, and the evidence as readable attachments.

allure-pytest is imported lazily so the evidence layer stays importable
without pytest (the CLI writes the same JSON files). Everything attached is
read back from the redacted evidence record or passed through
harness.core.redact, so no account id or credential reaches a report.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..core.categories import categories_json
from ..core.record import Evidence
from ..core.redact import redact_text

EPIC = "Gateway connection"
# Phases in the order a healthy Gateway completes them (harness.clients.base.PHASES;
# repeated as strings so this module needs no client-layer import).
PHASE_ORDER = ("tcp_connect", "server_version", "next_valid_id", "managed_accounts",
               "first_account_value", "api_ready")


def _allure() -> Any:
    try:
        import allure
    except ImportError:  # allure-pytest absent: evidence still goes to JSON files
        return None
    return allure


def attach_evidence(evidence: Evidence, path: Path, *, feature: str | None = None) -> None:
    """Labels, parameters, phase steps and attachments for the running test.

    A test that records several scenarios (a matrix cell: handshake,
    account sync, zombie run) passes one `feature` for all of them, so it
    sits once in the report's tree; its measured values are then named
    per scenario (``zombie.api_ready_ms``) instead of overwriting each other.
    """
    allure = _allure()
    if allure is None:
        return
    data = json.loads(path.read_text(encoding="utf-8"))  # the redacted record, as written
    _labels(allure, evidence, data, feature)
    _phase_steps(allure, evidence, data)
    prefix = f"{evidence.scenario}." if feature else ""
    allure.attach(path.read_text(encoding="utf-8"), name=f"{prefix}evidence.json",
                  attachment_type=allure.attachment_type.JSON)
    if data.get("transcript"):
        allure.attach(data["transcript"], name=f"{prefix}transcript.txt", attachment_type=allure.attachment_type.TEXT)
    runs = (data.get("details") or {}).get("runs")
    if isinstance(runs, list) and runs:
        allure.attach(runs_table(runs, data.get("measurements") or {}), name=f"{prefix}close_wait_runs.txt",
                      attachment_type=allure.attachment_type.TEXT)
    logs = (data.get("details") or {}).get("logs")
    if logs and not evidence.ok:
        # Container (or other process) logs, attached only when the run
        # failed: the place a person looks next. Redacted once more here in
        # case a producer put raw text in details.
        for name, text in (logs.items() if isinstance(logs, Mapping) else [("logs", logs)]):
            allure.attach(redact_text(str(text)), name=f"{name}.log", attachment_type=allure.attachment_type.TEXT)


# The run_kind label: why a test ran, so a reader tells a Gateway
# regression from a detector proving itself (the terminal summary makes the
# same split: harness.evidence.summary._expected_failure).
KIND_SCENARIO, KIND_REGRESSION, KIND_SELF_TEST = "scenario", "regression check", "detector self-test"
SELF_TEST_SUFFIX = " + injected faults"


def gateway_group(data: Mapping[str, Any]) -> str:
    """The report's top-level group (label gateway_version): what a test
    judged, never a build it did not run. The matrix's row version
    (``10.41``); a mock outside the matrix by its profile's own name
    (``mock:default``), with `` + injected faults`` when the test injected
    faults on purpose (a detector self-test, its own group); else the
    build the target reported or the run declared."""
    params = data.get("parameters") or {}
    target = data.get("target") or {}
    if params.get("gateway_version"):
        return str(params["gateway_version"])
    if target.get("kind") == "mock":
        base = str(target.get("label") or f"mock:{target.get('profile')}")
    else:
        base = str(target.get("build") or "unknown")
        base = str(target.get("label") or "unknown") if base == "unknown" else base
    return base + SELF_TEST_SUFFIX if run_kind(data) == KIND_SELF_TEST else base


def run_kind(data: Mapping[str, Any]) -> str:
    params = data.get("parameters") or {}
    if params.get("fault") or params.get("mock_faults"):
        return KIND_SELF_TEST
    if params.get("matrix"):
        return KIND_REGRESSION
    return KIND_SCENARIO


def _labels(allure: Any, evidence: Evidence, data: Mapping[str, Any], feature: str | None) -> None:
    target, client = evidence.target, evidence.client
    test = _current_test()
    group = gateway_group(data)
    if test is not None:  # a second scenario in the same test: a self-test stays one
        earlier = next((lb.value for lb in test.labels if lb.name == "gateway_version"), None)
        if earlier and earlier.endswith(SELF_TEST_SUFFIX):
            group = earlier
    _set_label(allure, test, "epic", EPIC)
    _set_label(allure, test, "feature", feature or evidence.scenario)
    _set_label(allure, test, "gateway_target", target.get("kind", "?"))
    _set_label(allure, test, "gateway_version", group)
    _set_label(allure, test, "gateway_build", target.get("build", "unknown"))
    _set_label(allure, test, "run_kind", KIND_SELF_TEST if group.endswith(SELF_TEST_SUFFIX) else run_kind(data))
    _set_label(allure, test, "client", client.get("name", "?"))
    _set_label(allure, test, "client_version", f"{client.get('package')} {client.get('version')}")
    if evidence.server_version is not None:
        _set_label(allure, test, "server_version", str(evidence.server_version))
    category = evidence.category
    if category:
        _set_label(allure, test, "failure_category", category)
    # Measured values vary run to run: excluded from the history id so the
    # test keeps one history across runs.
    prefix = f"{evidence.scenario}." if feature else ""
    for name, value in sorted(evidence.measurements.items()):
        allure.dynamic.parameter(prefix + name, value, excluded=True)
    if evidence.failed_phase:
        allure.dynamic.parameter(prefix + "failed_phase", evidence.failed_phase, excluded=True)


def _set_label(allure: Any, test: Any, name: str, value: str) -> None:
    """One value per label name: a test that records several evidences
    must not show up several times in a group (allure appends labels)."""
    if test is not None:
        test.labels[:] = [label for label in test.labels if label.name != name]
    allure.dynamic.label(name, value)


def set_readable_parameter(name: str, value: str, *, hide: tuple[str, ...] = ()) -> None:
    """Show `name: value` as plain text (allure-pytest quotes strings and
    prints a dataclass's repr) and hide the raw pytest parameters in
    `hide`; the history id still comes from the raw parameters."""
    test = _current_test()
    if test is None:
        return
    from allure_commons.model2 import Parameter

    for param in test.parameters:
        if param.name in hide:
            param.mode = "hidden"
    test.parameters[:] = [p for p in test.parameters if p.name != name]
    test.parameters.insert(0, Parameter(name=name, value=value, excluded=True))


def set_label(name: str, value: str) -> None:
    """Set a label of the running test to one value (no-op without allure)."""
    allure = _allure()
    if allure is not None:
        _set_label(allure, _current_test(), name, value)


def _current_test() -> Any:
    """The TestResult allure-pytest keeps for the running test, or None."""
    try:
        from allure_commons._core import plugin_manager
    except ImportError:
        return None
    for plugin in plugin_manager.get_plugins():
        logger = getattr(plugin, "allure_logger", None)
        if logger is not None and hasattr(logger, "get_test"):
            test = logger.get_test(None)
            if test is not None:
                return test
    return None


def _phase_steps(allure: Any, evidence: Evidence, data: Mapping[str, Any]) -> None:
    """One step per handshake phase, titled with its time, back-dated to
    when the phase happened; then a failed step for the phase that stopped.

    allure.step cannot be back-dated, so each step is opened and closed
    through allure's own hooks and its start/stop are then set from the
    measured times. The connect attempt's wall-clock start is estimated
    from the evidence's creation (a few ms earlier than the attempt, so the
    steps sit at most that much early; the titles carry the exact times).
    """
    measurements = evidence.measurements
    # In the order they happened: clients differ in when they call
    # themselves ready (raw: after nextValidId; ib_async: after its sync).
    marks = sorted(((phase, measurements[f"{phase}_ms"]) for phase in PHASE_ORDER if f"{phase}_ms" in measurements),
                   key=lambda mark: mark[1])
    origin_ms = (time.time() - (time.monotonic() - evidence._t0)) * 1000
    previous = 0.0
    for phase, at_ms in marks:
        title = f"{phase}: at {at_ms:.1f} ms (+{max(0.0, at_ms - previous):.1f} ms)"
        _step(title, origin_ms + previous, origin_ms + at_ms)
        previous = at_ms
    for name, value in sorted(measurements.items()):
        if name.endswith("_ms") and name[:-3] not in PHASE_ORDER:
            _step(f"{name[:-3]}: {value:.1f} ms", None, None)
    for row in (data.get("details") or {}).get("runs") or []:
        ready = row.get("api_ready_ms")
        state = "ok" if row.get("ok") else f"failed at {row.get('failed_phase')}: {row.get('cause')}"
        _step(f"run {row.get('run')} (client id {row.get('client_id')}): {state}"
              + (f", api_ready {ready:.1f} ms" if isinstance(ready, (int, float)) else "")
              + f", CLOSE_WAIT {row.get('close_wait_after')}", None, None, failed=not row.get("ok"))
    if not evidence.ok:
        where = data.get("failed_phase") or "?"
        _step(f"FAILED at {where}: {data.get('cause')}", None, None, failed=True,
              message=f"{data.get('cause')}\nhint: {data.get('hint')}")


def _step(title: str, start_ms: float | None, stop_ms: float | None, *, failed: bool = False,
          message: str | None = None) -> None:
    from allure_commons._core import plugin_manager

    step_id = str(uuid.uuid4())
    plugin_manager.hook.start_step(uuid=step_id, title=title, params={})
    step = _step_result(plugin_manager, step_id)
    # An AssertionError is what allure reports as "failed" (anything else is "broken").
    error = AssertionError(message or title) if failed else None
    plugin_manager.hook.stop_step(uuid=step_id, exc_type=type(error) if error else None, exc_val=error,
                                  exc_tb=None)
    if step is not None:
        if failed:
            step.status = "failed"
        if start_ms is not None and stop_ms is not None:
            step.start, step.stop = round(start_ms), round(max(stop_ms, start_ms))


def _step_result(plugin_manager: Any, step_id: str) -> Any:
    """The step object allure-pytest keeps for a running step, so its times
    can be set; None if the listener is not the one this code knows."""
    for plugin in plugin_manager.get_plugins():
        logger = getattr(plugin, "allure_logger", None)
        if logger is not None and hasattr(logger, "get_item"):
            item = logger.get_item(step_id)
            if item is not None:
                return item
    return None


def runs_table(runs: list[Mapping[str, Any]], measurements: Mapping[str, Any]) -> str:
    """The per-run CLOSE_WAIT table of a consecutive-run scenario, as text."""
    header = ("run", "client id", "ok", "api_ready ms", "CLOSE_WAIT after", "failed phase / cause")
    rows = [(str(r.get("run")), str(r.get("client_id")), "yes" if r.get("ok") else "NO",
             f"{r['api_ready_ms']:.1f}" if isinstance(r.get("api_ready_ms"), (int, float)) else "-",
             str(r.get("close_wait_after")),
             "" if r.get("ok") else f"{r.get('failed_phase')}: {r.get('cause')}") for r in runs]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header[:-1])]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line[:-1], widths)) + "  " + line[-1]
             for line in [header, *rows]]
    baseline = measurements.get("close_wait_baseline_count")
    if baseline is not None:
        lines.append(f"CLOSE_WAIT baseline {baseline}, max {measurements.get('close_wait_max_count')}, "
                     f"final {measurements.get('close_wait_final_count')}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


# ------------------------------------------------------------------ files in the results directory
# Written at session end: --clean-alluredir wipes the directory at start-up,
# so anything written earlier would be lost.


def write_allure_environment(alluredir: Path, props: dict[str, str]) -> None:
    """environment.properties (the report's Environment / Metadata widget)."""
    alluredir.mkdir(parents=True, exist_ok=True)
    lines = [f"{key}={_escape(redact_text(value))}" for key, value in props.items()]
    (alluredir / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_allure_executor(alluredir: Path, *, name: str, build_name: str, build_order: int | None = None,
                          build_url: str | None = None) -> None:
    """executor.json: who ran this and which run it was (the trend's x axis)."""
    alluredir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"name": name, "type": "local" if name == "local" else "ci", "buildName": build_name,
                            "reportName": "ibgw-harness"}
    if build_order is not None:
        data["buildOrder"] = build_order
    if build_url:
        data["buildUrl"] = build_url
    (alluredir / "executor.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_allure_categories(alluredir: Path) -> None:
    """categories.json: failure causes keyed on the evidence-derived prefix."""
    alluredir.mkdir(parents=True, exist_ok=True)
    (alluredir / "categories.json").write_text(json.dumps(categories_json(), indent=2) + "\n", encoding="utf-8")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", " ")


__all__ = ["attach_evidence", "gateway_group", "run_kind", "runs_table", "set_label", "set_readable_parameter",
           "write_allure_categories", "write_allure_environment",
           "write_allure_executor"]


def read_results(alluredir: Path) -> Iterator[tuple[Path, dict[str, Any], dict[str, Any]]]:
    """Each allure result file of a run: its path, its JSON and its labels by name.

    Why one reader: the run's outcome, the first screen's regression list and its evidence links all
    read the same files; an unreadable file (a run killed while writing) is skipped the same way."""
    for path in sorted(alluredir.glob("*-result.json")):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(result, dict):
            yield path, result, {lb.get("name"): lb.get("value") for lb in result.get("labels") or []}
