"""How `make test` shares its files between pytest-xdist workers.

Why: under `--dist loadfile` each file is one unit of work, so the module
fixtures (the version matrix's targets, test_report's nested runs) and the
module-level state (the matrix's pinning check reads what its own cells
wrote) stay in one process. But a few files are long runs of independent
tests (the zombie suite, the soak and interrupt tests: minutes each), and
as one unit each they left a worker busy alone at the end of the run while
the others sat idle. So, only for `--dist loadfile`: SPREAD files have no
module fixture and no module state, and each of their tests is its own unit
of work, shared by all workers.

Tried and dropped: handing the heaviest files out first. It started every
nested report run (test_report, test_xdist_report, test_redaction_planted,
test_make_report: each a matrix in a child pytest) at once, and on a loaded
machine their healthy cells timed out. The order stays xdist's own (files
with the most tests first), as it was.

The rest is xdist's own LoadFileScheduling, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Files whose tests share no module fixture and no module state (checked: no scope="module"/"session"
# fixture defined in the file, no module-level mutable state). A file added here must stay so.
SPREAD = frozenset({
    "suites/test_zombie.py",
    "tests/plugin/test_interrupt_cleanup.py",
    "tests/clients/test_isolated_worker.py",
    "tests/mock/faults/test_nightly_reset.py",
    "tests/scenarios/test_verdicts.py",
})
# Not SPREAD: tests/scenarios/test_soak_ci.py and tests/cli/test_soak_cli_input.py start their soaks side
# by side in a module fixture (tests/support/background.py); spread, each worker would start them all.


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def scheduler(config: Any, log: Any) -> Any:
    """xdist's LoadFileScheduling, with each test of a SPREAD file its own unit of work."""
    from xdist.scheduler import LoadFileScheduling

    class SpreadLoadFileScheduling(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = file_of(nodeid)
            return nodeid if path in SPREAD else path

    return SpreadLoadFileScheduling(config, log)


def uses_loadfile(config: Any) -> bool:
    return getattr(config.option, "dist", "no") == "loadfile"


__all__: Sequence[str] = ("SPREAD", "scheduler", "uses_loadfile")
