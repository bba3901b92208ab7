"""How `make test` shares its files between pytest-xdist workers.

Why: under `--dist loadfile` each file is one unit of work, so the module
fixtures (the version matrix's targets, test_report's nested runs) and the
module-level state (the matrix's pinning check reads what its own cells
wrote) stay in one process. But a few files are long runs of independent
tests (the zombie suite, the soak and interrupt tests: minutes each), and
as one unit each they left a worker busy alone at the end of the run while
the other sat idle. Two changes, both only for `--dist loadfile`:

* SPREAD files have no module fixture and no module state: each of their
  tests is its own unit, so both workers share them;
* the heaviest files are handed out first (longest-first), so the run does
  not end on one long file. The weights are measured seconds under load
  (2 workers, 2 cores, 2026-12-06); a stale weight costs balance only,
  never correctness.

The rest is xdist's own LoadFileScheduling, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Files whose tests share no module fixture and no module state (checked: no scope="module"/"session"
# fixture defined in the file, no module-level mutable state). A file added here must stay so.
SPREAD = frozenset({
    "suites/test_zombie.py",
    "tests/test_interrupt_cleanup.py",
    "tests/test_isolated_worker.py",
    "tests/test_nightly_reset.py",
    "tests/test_soak_ci.py",
    "tests/test_soak_cli_input.py",
    "tests/test_verdicts.py",
})

# Seconds per file measured in one loaded run (the order is what matters); unlisted files weigh 0.
WEIGHT: dict[str, float] = {
    "suites/test_zombie.py": 200, "tests/test_soak_ci.py": 115, "tests/test_fuzz_mock.py": 107,
    "tests/test_isolated_worker.py": 100, "tests/test_soak_cli_input.py": 100, "suites/test_version_matrix.py": 80,
    "tests/test_interrupt_cleanup.py": 70, "tests/test_xdist_report.py": 60, "tests/test_report.py": 50,
    "tests/test_redaction_planted.py": 50, "tests/test_make_report.py": 43, "tests/test_verdicts.py": 40,
    "tests/test_engines.py": 35, "tests/test_packaging.py": 30, "tests/test_nightly_reset.py": 30,
}


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def heaviest_first(items: list[Any]) -> None:
    """Reorder collected items in place, heaviest file first; a stable sort, so each file's
    tests keep their order and stay together."""
    items.sort(key=lambda item: -WEIGHT.get(file_of(item.nodeid), 0.0))


def scheduler(config: Any, log: Any) -> Any:
    """xdist's LoadFileScheduling, with each test of a SPREAD file its own unit of work."""
    from xdist.scheduler import LoadFileScheduling

    class SpreadLoadFileScheduling(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = file_of(nodeid)
            return nodeid if path in SPREAD else path

    # The workers collected heaviest-first (heaviest_first): keep that order instead of
    # xdist's by-number-of-tests one.
    config.option.loadscopereorder = False
    return SpreadLoadFileScheduling(config, log)


def uses_loadfile(config: Any) -> bool:
    return getattr(config.option, "dist", "no") == "loadfile"


__all__: Sequence[str] = ("SPREAD", "WEIGHT", "heaviest_first", "scheduler", "uses_loadfile")
