"""What a pytest session adds to its allure results when it ends:
executor.json, categories.json and the plots of this run's evidence.

Why at session end: `--clean-alluredir` wipes the results directory at
start-up, so these files are written after it; and the plots need every
scenario's evidence. The plugin calls finish_allure_results() from
pytest_sessionfinish, after environment.properties.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ..core.config import env as config_env
from ..core.config import foreign_env
from ..core.notices import notice
from .allure_io import write_allure_categories, write_allure_executor
from .plots import load_tree, plot_run

# CI systems' run counters, first one set wins (the report's trend axis).
BUILD_ORDER_ENV = ("IBGW_BUILD_ORDER", "GITHUB_RUN_NUMBER", "CI_PIPELINE_IID", "BUILD_NUMBER")


def plots_dir_for(evidence_dir: Path) -> Path:
    """Plots sit beside the evidence directory: reports/evidence -> reports/plots."""
    return evidence_dir.parent / "plots"


def gateways_judged(evidence_dir: Path) -> list[str]:
    """What the run's evidence judged, one entry per report group:
    ``10.41 (10.41.1d)`` for a build, ``mock:default`` for a mock profile
    outside the matrix; matrix builds newest first, then the rest."""
    import json

    from .allure_io import gateway_group
    from .pinning import version_order

    found: dict[str, str] = {}
    for path in sorted(evidence_dir.rglob("*.json")) if evidence_dir.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or "scenario" not in data:
            continue
        group = gateway_group(data)
        build = str((data.get("target") or {}).get("build") or "")
        found[group] = f"{group} ({build})" if (data.get("parameters") or {}).get("matrix") and build else group
    matrix = sorted((g for g in found if found[g] != g), key=version_order, reverse=True)
    return [found[g] for g in matrix] + sorted(g for g in found if found[g] == g)


def _build_order() -> int | None:
    """IBGW_BUILD_ORDER, else the CI's own build number (GitHub, GitLab, Jenkins)."""
    values = [config_env(BUILD_ORDER_ENV[0]), *(foreign_env(k) for k in BUILD_ORDER_ENV[1:])]
    return next((int(v) for v in values if v.isdigit()), None)


def finish_allure_results(alluredir: Path, evidence_dir: Path) -> list[Path]:
    """executor.json, categories.json and plots; returns the plot files.

    A plotting failure is reported on stderr and never fails the session:
    the test outcomes are the result, the pictures are a view of them.
    """
    order = _build_order()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_allure_executor(alluredir, name="CI" if foreign_env("CI") else "local",
                          build_name=f"ibgw-harness run {order if order is not None else started}",
                          build_order=order)
    write_allure_categories(alluredir)
    try:
        plots = plot_run(load_tree(evidence_dir), plots_dir_for(evidence_dir)) if evidence_dir.is_dir() else []
    except Exception as exc:  # noqa: BLE001 - a broken plot must not turn a green run red
        notice(f"ibgw-harness: plots not drawn: {type(exc).__name__}: {exc}")
        return []
    _attach_globally(plots)
    return plots


def _attach_globally(paths: list[Path]) -> None:
    """Attach the plots to the report as global attachments (allure-pytest
    >= 2.16; a plain allure.attach has no test to go to at session end)."""
    try:
        import allure
    except ImportError:
        return
    if not hasattr(allure, "global_attach"):
        return
    for path in paths:
        allure.global_attach.file(str(path), name=path.name, attachment_type=allure.attachment_type.PNG)


__all__ = ["finish_allure_results", "gateways_judged", "plots_dir_for"]
