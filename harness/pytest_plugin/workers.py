"""pytest-xdist: one run, one controller, N workers.

Why a module of its own: under `pytest -n N` the controller process spawns
N worker processes and each loads this plugin. The run's side effects must
happen once, on the controller, before any worker starts (the run claim
the workers inherit through the environment, the dead-run sweep, the
evidence clearing), and the run's end once, on the controller, after every
worker has finished (the allure environment, executor and categories, the
JUnit suite property). Evidence files need no merging: each test writes
its own file (named by node id) into the shared evidence directory, so the
controller's summary, `ibgw pin` and the allure directory see every
worker's files as one set.

What must differ per worker: the client-id seed (seed + worker index, so
two workers never draw the same random ids) and, in a live run against one
shared Gateway, the client-id range (each worker a disjoint slice). Ports
need nothing: every mock, proxy and container port is bound to 0 or taken
free from the OS.

Nothing here imports xdist: without it (or without -n) every function
answers "not a worker, not a controller".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

SEED_KEY = "ibgw_seed"  # workerinput: the controller's seed
ACTIVE_KEY = "ibgw_active"  # workeroutput: this worker's plugin activated (a lazily activated run)
SUITE_PROPERTIES_KEY = "ibgw_suite_properties"  # workeroutput: JUnit suite properties the worker recorded


def workerinput(config: pytest.Config) -> dict[str, Any] | None:
    """What the controller handed this worker; None outside a worker."""
    return getattr(config, "workerinput", None)


def is_worker(config: pytest.Config) -> bool:
    return workerinput(config) is not None


def is_controller(config: pytest.Config) -> bool:
    """The process that spawns workers (pytest -n N, N > 0), known from the options xdist settled in
    pytest_cmdline_main (its own test, `_is_distribution_mode`). Not from xdist's "dsession" plugin:
    xdist registers that in a trylast pytest_configure, after ours, so asking for it there always
    said no and the controller's hooks (the workers' seeds, their JUnit suite properties) never ran."""
    return (not is_worker(config) and not config.getoption("collectonly", False)
            and config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None)))


def worker_slot(config: pytest.Config) -> tuple[int, int]:
    """(index, count): gw0 of 2 -> (0, 2); (0, 1) outside xdist."""
    data = workerinput(config)
    if data is None:
        return 0, 1
    try:
        return int(str(data.get("workerid", "gw0")).removeprefix("gw")), max(1, int(data.get("workercount", 1)))
    except ValueError:
        return 0, 1


def worker_seed(config: pytest.Config, seed: int) -> int:
    """The controller's seed (when it handed one) plus the worker index: one
    seed recorded for the run, a different random-id sequence per worker."""
    data = workerinput(config)
    if data is None:
        return seed
    base = data.get(SEED_KEY, seed)
    return int(base) + worker_slot(config)[0]


def split_range(id_range: tuple[int, int], index: int, count: int) -> tuple[int, int]:
    """Worker `index`'s disjoint share of a client-id range (the last takes
    the remainder); the whole range when it is too small to share."""
    if count <= 1:
        return id_range
    lo, hi = id_range
    size = (hi - lo + 1) // count
    if size < 1:
        return id_range
    start = lo + index * size
    return start, (hi if index == count - 1 else start + size - 1)


class ControllerHooks:
    """Registered on the controller only (xdist's own hooks)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.workers_active = False
        self.suite_properties: dict[str, str] = {}  # from every worker, first value per name

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[SEED_KEY] = self.seed

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", {})
        if output.get(ACTIVE_KEY):
            self.workers_active = True
        for name, value in output.get(SUITE_PROPERTIES_KEY, {}).items():
            self.suite_properties.setdefault(name, value)


CONTROLLER_PLUGIN_NAME = "ibgw_harness.xdist_controller"


def controller_hooks(config: pytest.Config) -> ControllerHooks | None:
    plugin = config.pluginmanager.get_plugin(CONTROLLER_PLUGIN_NAME)
    return plugin if isinstance(plugin, ControllerHooks) else None


def mark_worker_active(config: pytest.Config) -> None:
    """Tell the controller this worker's plugin activated (it then finishes the run's reports)."""
    output = getattr(config, "workeroutput", None)
    if output is not None:
        output[ACTIVE_KEY] = True


def suite_property_recorder(config: pytest.Config,
                            record_testsuite_property: Callable[[str, object], None]) -> Callable[[str, object], None]:
    """Where a JUnit suite property goes: pytest's own fixture in a serial run; under xdist a
    worker writes no JUnit file (pytest's fixture is a no-op there), so the property travels in
    the worker's output and the controller records it at the run's end (ControllerHooks)."""
    output = getattr(config, "workeroutput", None)
    if output is None:
        return record_testsuite_property

    def to_controller(name: str, value: object) -> None:
        output.setdefault(SUITE_PROPERTIES_KEY, {})[name] = str(value)

    return to_controller


__all__ = ["CONTROLLER_PLUGIN_NAME", "ControllerHooks", "controller_hooks", "is_controller", "is_worker",
           "mark_worker_active", "split_range", "suite_property_recorder", "worker_seed", "worker_slot"]
