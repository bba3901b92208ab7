"""The plugin's side effects, done once per run and only when asked.

Why apart: installed into a team's project the plugin is loaded by every
`pytest` there. Until the run names an ibgw option or a test uses an ibgw
fixture, nothing here runs: no file is touched, no signal handler
installed, no environment variable set, no process or container swept
(the pattern of pytest-xdist, whose session object exists only with -n,
and pytest-httpserver, whose server starts with its fixture).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from .. import runstate
from ..core.config import env as config_env
from ..core.redact import install_log_redaction
from ..evidence.report_redaction import redact_warning
from . import workers
from .state import ACTIVATION_KEY, CONFIG_KEY, LIVE_KEY, LIVE_PLUGIN_NAME, Activation, HarnessConfig

log = logging.getLogger("harness.pytest_plugin")

HARNESS_TOP_LEVEL_FILES = ("fault_matrix.json",)
# The fields every Evidence record (harness.core.record) writes: how a file is known to be the harness's.
EVIDENCE_KEYS = frozenset({"scenario", "target", "client", "outcome", "checks", "started_at", "duration_s"})


def check_target_and_dir(cfg: HarnessConfig) -> str | None:
    """What can only be checked by touching something: the evidence
    directory is writable (it is created), a docker: target's image is
    on the engine. None, or the one-line problem."""
    from ..cli.paths import writable_dir_problem

    problem = writable_dir_problem(cfg.evidence_dir, "--evidence-dir")
    if problem is not None:
        return problem
    if cfg.gateway_spec.strip().startswith("docker:"):
        from ..targets import parse_target
        from ..targets.container_target import ContainerTarget, require_image
        from ..targets.docker_engine import EngineUnavailable, engine

        target = parse_target(cfg.gateway_spec, cfg.docker_host)
        if not isinstance(target, ContainerTarget):  # a docker: spec always parses to one
            return None
        try:
            require_image(engine(cfg.docker_host), target.image)
        except EngineUnavailable as exc:
            return str(exc)
    return None


def activate(config: pytest.Config, *, from_fixture: bool = False) -> HarnessConfig:
    """Claim the run for the harness (once): children it starts register
    under its run directory, SIGTERM ends it like Ctrl-C, what killed runs
    left (processes, containers, half-written files) is swept, and the
    evidence directory starts empty of the harness's own records.

    From a fixture, a bad option found while the plugin was inert fails
    the test with that one line (pytest has no usage error after start-up)."""
    activation = config.stash.setdefault(ACTIVATION_KEY, Activation(explicit=False))
    cfg = config.stash.get(CONFIG_KEY, None)
    if activation.active and cfg is not None:
        return cfg
    problem = activation.problem or (check_target_and_dir(cfg) if cfg is not None else "no ibgw configuration")
    live = config.stash.get(LIVE_KEY, None)
    if problem is None and live is not None and live.policy.live and not config.pluginmanager.has_plugin(
            LIVE_PLUGIN_NAME):  # fail closed: a real Gateway never without the proxy, guard and account check
        problem = f"{cfg.gateway_spec if cfg else '?'} is a real Gateway but the live-run glue is not loaded"
    if problem is not None:
        activation.problem = problem
        if from_fixture:
            pytest.fail(f"ibgw: {problem}", pytrace=False)
        raise pytest.UsageError(problem)
    assert cfg is not None
    activation.active = True
    # From now on log records redact themselves (account ids seen, credentials), and so do
    # recorded warnings: a project that has the plugin installed but unused keeps its own as they are.
    install_log_redaction()
    if not config.pluginmanager.has_plugin(WARNINGS_PLUGIN_NAME):
        config.pluginmanager.register(WarningRedaction(), WARNINGS_PLUGIN_NAME)
    runstate.sigterm_as_interrupt()
    if workers.is_worker(config):
        # An xdist worker: the controller claimed the run, swept and cleared before spawning it
        # (its IBGW_RUN_OWNER is inherited, so its children count as the run's). Clearing here
        # would delete a sibling worker's evidence; a lazily activated run (no controller claim)
        # claims and sweeps here, which spares every live owner's processes and containers.
        workers.mark_worker_active(config)
        if not config_env(runstate.OWNER_ENV):
            runstate.claim_run()
            sweep_leftovers(cfg.evidence_dir)
        return cfg
    runstate.claim_run()
    sweep_leftovers(cfg.evidence_dir)
    clear_evidence(cfg.evidence_dir)
    return cfg


WARNINGS_PLUGIN_NAME = "ibgw_harness.warning_redaction"


class WarningRedaction:
    """Registered at activation: a recorded warning's text may name an account too."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: object, when: str, nodeid: str, location: object) -> None:
        """Before the terminal's warnings summary formats it (evidence.report_redaction)."""
        redact_warning(warning_message)


def sweep_leftovers(evidence_dir: Path) -> list[str]:
    """What a killed earlier run left: its mock processes and half-written
    files (runstate), and its containers with their listening ports
    (docker_engine.sweep_orphans; skipped when no engine answers)."""
    done = runstate.sweep(temp_dirs=[evidence_dir])
    done += sweep_containers()
    return done


def sweep_containers() -> list[str]:
    """Containers of dead runs, removed; nothing when docker-py is not
    installed or no engine is reachable (then no run could have left one here)."""
    from ..targets.docker_engine import EngineUnavailable, sweep_orphans

    try:
        return [f"removed container {name}" for name in sweep_orphans()]
    except EngineUnavailable:
        return []


def clear_evidence(evidence_dir: Path) -> None:
    """Start each run with an empty evidence set, so the summary and the
    report describe this run only. Only the harness's own records go: a
    JSON object with every Evidence field, or a file the harness names;
    anything else a project keeps there stays."""
    if not evidence_dir.is_dir():
        return
    for path in evidence_dir.glob("*.json"):
        if path.name in HARNESS_TOP_LEVEL_FILES or _is_evidence(path):
            path.unlink(missing_ok=True)


def _is_evidence(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and EVIDENCE_KEYS <= data.keys()


__all__ = ["activate", "check_target_and_dir", "clear_evidence", "sweep_containers", "sweep_leftovers"]
