"""Repository-level pytest glue. The fixtures live in the installed plugin
(harness.pytest_plugin, entry point pytest11; this repository opts in with
`ibgw_enable = true` in pyproject.toml); this file only adds what a person
running this repository's suites wants in the header, the one option
that tells the harness's own test run from a report run, and how xdist
shares the files between its workers."""

from __future__ import annotations

import pytest


def pytest_report_header(config: pytest.Config) -> list[str]:
    from harness.pytest_plugin.state import harness_config

    cfg = harness_config(config)
    if cfg is None:
        return []
    return [f"ibgw-harness: gateway={cfg.gateway_spec} clients={','.join(cfg.clients)} "
            f"seed={cfg.seed} (replay random client ids with --ibgw-seed {cfg.seed})"]


def pytest_addoption(parser: pytest.Parser) -> None:
    # `make report` judges Gateway builds: a regression the version matrix catches fails its cell, so
    # the report shows it red. `make test` judges the harness: there the same catch is the detector
    # working, so it is an expected failure (xfail), and a regression the matrix MISSES still fails.
    parser.addoption("--expect-regressions", action="store_true", default=False,
                     help="a Gateway regression the version matrix catches on a regression-fixture profile is "
                          "an expected failure (xfail), not a failure: the harness's own test run (make test)")


# pytest-xdist under --dist loadfile (make test, make report): each file stays on one worker, except
# the files of independent long tests, which both workers share (tests/support/balance.py says why).
# Without xdist (-p no:xdist) the hook is never called.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    from tests.support import balance

    return balance.scheduler(config, log) if balance.uses_loadfile(config) else None

