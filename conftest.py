"""Repository-level pytest glue. The fixtures live in the installed plugin
(harness.pytest_plugin, entry point pytest11; this repository opts in with
`ibgw_enable = true` in pyproject.toml); this file only adds what a person
running this repository's suites wants in the header."""

from __future__ import annotations

import pytest


def pytest_report_header(config: pytest.Config) -> list[str]:
    from harness.pytest_plugin.state import harness_config

    cfg = harness_config(config)
    if cfg is None:
        return []
    return [f"ibgw-harness: gateway={cfg.gateway_spec} clients={','.join(cfg.clients)} "
            f"seed={cfg.seed} (replay random client ids with --ibgw-seed {cfg.seed})"]
