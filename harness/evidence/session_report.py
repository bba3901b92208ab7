"""What a pytest session adds to its allure results when it ends:
executor.json, categories.json and the plots of this run's evidence.

Why at session end: `--clean-alluredir` wipes the results directory at
start-up, so these files are written after it; and the plots need every
scenario's evidence. The plugin calls finish_allure_results() from
pytest_sessionfinish, after environment.properties.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from .allure_io import write_allure_categories, write_allure_executor
from .plots import load_tree, plot_run

# CI systems' run counters, first one set wins (the report's trend axis).
BUILD_ORDER_ENV = ("IBGW_BUILD_ORDER", "GITHUB_RUN_NUMBER", "CI_PIPELINE_IID", "BUILD_NUMBER")


def plots_dir_for(evidence_dir: Path) -> Path:
    """Plots sit beside the evidence directory: reports/evidence -> reports/plots."""
    return evidence_dir.parent / "plots"


def finish_allure_results(alluredir: Path, evidence_dir: Path) -> list[Path]:
    """executor.json, categories.json and plots; returns the plot files.

    A plotting failure is reported on stderr and never fails the session:
    the test outcomes are the result, the pictures are a view of them.
    """
    order = next((int(os.environ[k]) for k in BUILD_ORDER_ENV if os.environ.get(k, "").isdigit()), None)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_allure_executor(alluredir, name="CI" if os.environ.get("CI") else "local",
                          build_name=f"ibgw-harness run {order if order is not None else started}",
                          build_order=order)
    write_allure_categories(alluredir)
    try:
        plots = plot_run(load_tree(evidence_dir), plots_dir_for(evidence_dir)) if evidence_dir.is_dir() else []
    except Exception as exc:  # noqa: BLE001 - a broken plot must not turn a green run red
        print(f"ibgw-harness: plots not drawn: {type(exc).__name__}: {exc}", file=sys.stderr)
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


__all__ = ["finish_allure_results", "plots_dir_for"]
