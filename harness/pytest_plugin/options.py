"""The plugin's command-line options, and the run configuration built from them.

Why the options default to None: the plugin must do nothing in a project
that did not ask for it (a good citizen), so it has to tell an option
someone named from one left at its default. Defaults (and the IBGW_*
environment variables that override them) are filled in by `resolve`, after
that question is answered. Building the configuration touches nothing: no
file, no signal, no environment (activation.py does that, when asked).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..clients import CLIENT_NAMES, available_clients, require_client
from ..clients.custom import ClientSpecError, validate_spec
from ..core.config import env as config_env
from ..extras import MissingExtra
from ..live.policy import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PAUSE_S,
    DEFAULT_ZOMBIE_RUNS,
    ClientIdAllocator,
    ConnectionBudget,
    LivePolicy,
    parse_id_range,
)
from ..safety.accounts import ALLOW_FLAG
from ..targets import TargetSpecError, parse_target
from ..targets.engines import choose_hosts
from . import workers
from .state import HarnessConfig, LiveRun

ENABLE_INI = "ibgw_enable"
SET_A_TARGET = ("live run without a Gateway: set IBGW_HOST and IBGW_PORT (e.g. IBGW_HOST=127.0.0.1 "
                "IBGW_PORT=4002 for a paper IB Gateway), or pass --gateway HOST:PORT, or --gateway docker:IMAGE "
                "to start a Gateway container")

# dest -> (environment variable, built-in default, converter): applied by resolve() to options left unset.
_DEFAULTS: dict[str, tuple[str | None, Any, Callable[[str], Any]]] = {
    "ibgw_gateway": ("IBGW_GATEWAY", "mock", str),
    "ibgw_timeout": ("IBGW_TIMEOUT", 10.0, float),
    "ibgw_evidence_dir": ("IBGW_EVIDENCE_DIR", "reports/evidence", str),
    "ibgw_gateway_version": ("IBGW_GATEWAY_VERSION", None, str),
    "ibgw_client_ids": ("IBGW_CLIENT_IDS", "900-999", str),
    "ibgw_pause": ("IBGW_PAUSE", DEFAULT_PAUSE_S, float),
    "ibgw_zombie_runs": (None, DEFAULT_ZOMBIE_RUNS, int),
    "ibgw_max_connections": (None, DEFAULT_MAX_CONNECTIONS, int),
}
_FLAGS = ("ibgw_live", "ibgw_allow_live_account", "ibgw_no_proxy", "ibgw_compare")
# Environment variables that name a Gateway for pytest: setting one is asking for the plugin.
ACTIVATING_ENV = ("IBGW_GATEWAY",)


def add_options(parser: pytest.Parser) -> None:
    parser.addini(ENABLE_INI, type="bool", default=False,
                  help="ibgw-harness: act in every run of this project (otherwise only when an ibgw option is "
                       "given or a test uses an ibgw fixture)")
    group = parser.getgroup("ibgw", "IB Gateway harness")
    group.addoption("--gateway", dest="ibgw_gateway", default=None,
                    help="Gateway target: mock, mock:PROFILE, replay:FILE (a recording, `ibgw record`) or HOST:PORT "
                         "(env IBGW_GATEWAY; default mock)")
    group.addoption("--client", dest="ibgw_client", action="append", default=None,
                    help="client to run scenarios through: raw, ib_async, ibapi, all, or a team's own adapter "
                         "as module.path:factory; repeat for several (default: all)")
    group.addoption("--ibgw-timeout", dest="ibgw_timeout", type=float, default=None,
                    help="per-connect timeout in seconds (env IBGW_TIMEOUT; default 10)")
    group.addoption("--evidence-dir", dest="ibgw_evidence_dir", default=None,
                    help="where scenario evidence JSON is written (env IBGW_EVIDENCE_DIR; default reports/evidence)")
    group.addoption("--gateway-version", dest="ibgw_gateway_version", default=None,
                    help="the Gateway build you run (e.g. 10.45.1j), recorded in the evidence for `ibgw pin` "
                         "when the target cannot tell (a desktop Gateway); containers read it from the image")
    group.addoption("--ibgw-seed", dest="ibgw_seed", type=int, default=None,
                    help="seed for random client ids (default: random, recorded in the evidence)")
    group.addoption("--ibgw-live", dest="ibgw_live", action="store_true",
                    help="a live run: the Gateway comes from --gateway HOST:PORT|docker:IMAGE or IBGW_HOST/"
                         "IBGW_PORT; without either every test skips and says what to set (make test-live)")
    group.addoption(ALLOW_FLAG, dest="ibgw_allow_live_account", action="store_true",
                    help="let a live run go on when a managed account is not a paper (DU/DF) account")
    group.addoption("--ibgw-client-ids", dest="ibgw_client_ids", default=None,
                    help="LOW-HIGH: client ids a live run may use (env IBGW_CLIENT_IDS; default 900-999)")
    group.addoption("--ibgw-pause", dest="ibgw_pause", type=float, default=None,
                    help=f"seconds between connect/disconnect cycles in a live run (env IBGW_PAUSE; "
                         f"default {DEFAULT_PAUSE_S:g})")
    group.addoption("--ibgw-zombie-runs", dest="ibgw_zombie_runs", type=int, default=None,
                    help=f"zombie cycles per test against a real Gateway (default {DEFAULT_ZOMBIE_RUNS})")
    group.addoption("--ibgw-max-connections", dest="ibgw_max_connections", type=int, default=None,
                    help=f"connections a live run may hold at once (default {DEFAULT_MAX_CONNECTIONS})")
    group.addoption("--ibgw-no-proxy", dest="ibgw_no_proxy", action="store_true",
                    help="live runs go direct instead of through the recording proxy (no Gateway-side transcript)")
    group.addoption("--docker-host", dest="ibgw_docker_host", action="append", default=None, metavar="URL",
                    help="a Docker engine containers start on: unix://PATH, tcp://HOST:PORT (TLS from "
                         "DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) or ssh://USER@HOST[:PORT]; repeat for several (the "
                         "version matrix spreads its rows over them; env IBGW_DOCKER_HOSTS=URL,URL; default: "
                         "DOCKER_HOST or the local socket)")
    group.addoption("--ibgw-compare", dest="ibgw_compare", action="store_true",
                    help="'Gateway or our code?': run each chosen client and the reference raw client back to "
                         "back and give a verdict (suites/test_gateway_or_code.py)")


def explicitly_asked(config: pytest.Config) -> bool:
    """True when the run names an ibgw option (command line, addopts or
    PYTEST_ADDOPTS), sets IBGW_GATEWAY, or the project's ini says
    `ibgw_enable = true`. Must run before resolve() fills the defaults in."""
    opt = config.option
    named = any(getattr(opt, dest, None) is not None for dest in (*_DEFAULTS, "ibgw_client", "ibgw_seed",
                                                                    "ibgw_docker_host"))
    flagged = any(getattr(opt, dest, False) for dest in _FLAGS)
    env = any(config_env(name, "") for name in ACTIVATING_ENV)
    return named or flagged or env or bool(config.getini(ENABLE_INI))


def resolve(config: pytest.Config) -> str | None:
    """Fill unset options from IBGW_* or the built-in default, in place (so
    `config.getoption("--gateway")` reads the value in use). Returns the
    problem with an environment value, if any (the option keeps its default)."""
    problem = None
    for dest, (env, default, convert) in _DEFAULTS.items():
        if getattr(config.option, dest, None) is not None:
            continue
        value, text = default, config_env(env, "") if env else ""
        if text:
            try:
                value = convert(text)
            except ValueError:
                problem = problem or f"{env}={text!r} is not a {convert.__name__}; hint: unset it or fix it"
        setattr(config.option, dest, value)
    return problem


def build(config: pytest.Config) -> tuple[HarnessConfig, LiveRun]:
    """The run's configuration from resolved options; pytest.UsageError (one
    line, with a hint) for a bad value. Reads, never writes."""
    spec = str(config.getoption("ibgw_gateway"))
    try:
        parse_target(spec)
    except TargetSpecError as exc:
        raise pytest.UsageError(str(exc)) from None
    chosen = config.getoption("ibgw_client") or ["all"]
    # `all`: the built-in clients installed here (a base install has no client library but raw).
    clients = available_clients() if "all" in chosen else tuple(dict.fromkeys(chosen))
    for name in clients:
        if name in CLIENT_NAMES:
            try:
                require_client(name)
            except MissingExtra as exc:
                raise pytest.UsageError(str(exc)) from None
        else:
            try:
                validate_spec(name)
            except ClientSpecError as exc:
                raise pytest.UsageError(f"{exc} (built-in clients: {', '.join(CLIENT_NAMES)}, all)") from None
    timeout = config.getoption("ibgw_timeout")
    if not timeout > 0:
        raise pytest.UsageError(f"--ibgw-timeout {timeout:g}: a connect timeout must be "
                                "above 0 seconds; hint: the default is 10 (IBGW_TIMEOUT)")
    evidence_dir = str(config.getoption("ibgw_evidence_dir") or "")
    if not evidence_dir.strip():
        raise pytest.UsageError("--evidence-dir is empty; hint: name a directory, e.g. reports/evidence")
    if Path(evidence_dir).exists() and not Path(evidence_dir).is_dir():
        raise pytest.UsageError(f"{evidence_dir} is a file, not a directory; hint: choose another --evidence-dir")
    try:
        docker_hosts = choose_hosts(config.getoption("ibgw_docker_host"))
    except TargetSpecError as exc:
        raise pytest.UsageError(str(exc)) from None
    seed = config.getoption("ibgw_seed")
    cfg = HarnessConfig(gateway_spec=spec, clients=clients, timeout=timeout, evidence_dir=Path(evidence_dir),
                        seed=workers.worker_seed(config, seed if seed is not None
                                                 else random.SystemRandom().randrange(1, 2**31)),
                        declared_build=config.getoption("ibgw_gateway_version"), docker_hosts=docker_hosts)
    return cfg, _live_run(config, cfg)


def is_mock_spec(spec: str) -> bool:
    spec = spec.strip()
    return spec == "mock" or spec.startswith(("mock:", "replay:"))  # a replay is the mock answering from a file


def _live_run(config: pytest.Config, cfg: HarnessConfig) -> LiveRun:
    """The live-run policy; `--ibgw-live` takes its target from IBGW_HOST/IBGW_PORT."""
    unconfigured = None
    if config.getoption("ibgw_live") and is_mock_spec(cfg.gateway_spec):
        host, port = config_env("IBGW_HOST"), config_env("IBGW_PORT")
        if host and port:
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise pytest.UsageError(f"IBGW_PORT={port!r} is not a port in 1..65535")
            cfg.gateway_spec = f"{host}:{port}"
        else:
            unconfigured = SET_A_TARGET
    try:
        id_range = workers.split_range(parse_id_range(config.getoption("ibgw_client_ids")),
                                       *workers.worker_slot(config))  # xdist: disjoint per worker
    except ValueError as exc:
        raise pytest.UsageError(f"--ibgw-client-ids: {exc}") from None
    for dest, name, minimum in (("ibgw_pause", "--ibgw-pause", 0), ("ibgw_zombie_runs", "--ibgw-zombie-runs", 1),
                                ("ibgw_max_connections", "--ibgw-max-connections", 1)):
        if config.getoption(dest) < minimum:
            raise pytest.UsageError(f"{name} must be at least {minimum}")
    live = unconfigured is None and not is_mock_spec(cfg.gateway_spec)
    policy = LivePolicy(live=live, id_range=id_range, pause_s=config.getoption("ibgw_pause"),
                        zombie_runs=config.getoption("ibgw_zombie_runs"),
                        max_connections=config.getoption("ibgw_max_connections"),
                        proxy=not config.getoption("ibgw_no_proxy"),
                        allow_live_account=config.getoption("ibgw_allow_live_account"))
    return LiveRun(policy, unconfigured, ClientIdAllocator(id_range if live else None),
                   ConnectionBudget(policy.max_connections if live else None, policy.pause_s if live else 0.0))


__all__ = ["ENABLE_INI", "SET_A_TARGET", "add_options", "build", "explicitly_asked", "is_mock_spec", "resolve"]
