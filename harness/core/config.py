"""Every environment variable the harness reads, in one table, read here.

Why one module: settings were read in fifteen files under two prefixes
(`IBGW_`, `HARNESS_`) with synonyms (`IBGW_ACCOUNTS` for `ibgw mock serve`,
`IBGW_MOCK_ACCOUNTS` for `--gateway mock`), so nobody could say what a
variable did or which spelling won. Every setting now has one `IBGW_` name,
a default, a help line and the places that use it; `env()` reads it and
still accepts an old name, with a one-time deprecation warning naming the
new one. README.md's configuration table is `markdown_table()` (a test
keeps them equal, and fails on a variable named anywhere in `harness/`
or `suites/` that this table does not list).

Why in harness/core: the mock's container entry points (`harness/mock/serve.py`,
`standin.py`, `healthcheck.py`) read their settings here too, and the mock
may import only the standard library and harness/core (import-linter); the
images copy harness/core. `harness.config` re-exports this module.
Variables other tools define (DOCKER_HOST, CI, the gnzsnz image's
TRADING_MODE...) are listed in FOREIGN and read through `foreign_env()`,
so no other module reads the environment. Standard library only.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

PREFIX = "IBGW_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str  # as text; "" when unset means "not given"
    help: str
    used_by: str  # the command or module that reads it
    old_names: tuple[str, ...] = ()  # still accepted, with a deprecation warning


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    # pytest plugin (harness/pytest_plugin/options.py, fixtures.py)
    Setting("IBGW_GATEWAY", "mock", "Gateway target for pytest (--gateway); setting it activates the plugin",
            "pytest plugin"),
    Setting("IBGW_TIMEOUT", "10", "per-connect timeout in seconds (--ibgw-timeout)", "pytest plugin"),
    Setting("IBGW_EVIDENCE_DIR", "reports/evidence", "where evidence JSON goes (--evidence-dir)", "pytest plugin"),
    Setting("IBGW_GATEWAY_VERSION", "", "the Gateway build to record for an external Gateway", "pytest plugin"),
    Setting("IBGW_CLIENT_IDS", "900-999", "client-id range of live runs", "pytest plugin"),
    Setting("IBGW_PAUSE", "", "seconds between connections in live runs (default: the live policy's)",
            "pytest plugin"),
    Setting("IBGW_HOST", "", "host of the Gateway a --ibgw-live run talks to", "pytest plugin"),
    Setting("IBGW_PORT", "", "port of the Gateway a --ibgw-live run talks to", "pytest plugin"),
    Setting("IBGW_REQUIRE_DOCKER", "", "1: a container test without a Docker engine fails instead of skipping "
            "(CI)", "pytest plugin", old_names=("HARNESS_REQUIRE_DOCKER",)),
    Setting("IBGW_REQUIRE_BROWSER", "", "1: the HTML report's browser test fails instead of skipping without "
            "its tooling (CI)", "tests/evidence/test_report.py", old_names=("HARNESS_REQUIRE_BROWSER",)),
    Setting("IBGW_RUN_DIR", "", "the run directory (set by the plugin for its child processes)", "runstate"),
    Setting("IBGW_RUN_OWNER", "", "the process owning the run directory (set by the plugin)", "runstate"),
    # targets
    Setting("IBGW_ACCOUNTS", "", "accounts the mock presents (DU...,DU...): --gateway mock and ibgw mock serve",
            "targets/mock_target.py, mock/serve.py", old_names=("IBGW_MOCK_ACCOUNTS",)),
    Setting("IBGW_REPLAY_SPEED", "1", "speed of a replay:FILE target (2: twice as fast)", "targets/replay_target.py"),
    Setting("IBGW_READY_TIMEOUT", "", "seconds a Gateway container may take to become ready (1..3600)",
            "targets/container_target.py"),
    Setting("IBGW_DOCKER_HOSTS", "", "Docker engines containers start on, comma-separated URLs (unix://, tcp://, "
            "ssh://); the version matrix spreads its rows over them (--docker-host)", "targets/engines.py"),
    Setting("IBGW_RUN_ID", "", "label of this run's containers (default: random)", "targets/docker_engine.py"),
    Setting("IBGW_BUILD_ORDER", "", "the build number shown in the session report (else the CI's)",
            "evidence/session_report.py"),
    # the mock's container entry points (standard library only: they read this module too)
    Setting("IBGW_MOCK_HOST", "127.0.0.1", "address `python3 -m harness.mock.serve` binds", "mock/serve.py"),
    Setting("IBGW_MOCK_PORT", "4002", "port the mock serves (and its health check probes)",
            "mock/serve.py, mock/healthcheck.py"),
    Setting("IBGW_MOCK_LOOP", "", "uvloop: `ibgw mock serve` runs on uvloop when it is installed (measured in "
            "make bench)", "cli/mock_serve.py"),
    Setting("IBGW_MOCK_STRICT", "", "1: every request the mock does not model is logged as a FAILURE",
            "mock/serve.py"),
    Setting("IBGW_PROFILE", "default", "mock profile (a Gateway build)", "mock/serve.py, mock/standin.py"),
    Setting("IBGW_FAULTS", "", "mock faults, ';'-separated (e.g. latency=50;max-clients=4)",
            "mock/serve.py, mock/standin.py"),
    Setting("IBGW_CONTROL_PORT", "", "port of the mock's HTTP control endpoint (off when unset)", "mock/serve.py"),
    Setting("IBGW_HANDSHAKE_TIMEOUT", "30", "seconds from accept to startApi before the mock closes a connection",
            "mock/serve.py"),
    Setting("IBGW_LOGIN_DELAY", "20", "seconds the stand-in Gateway 'logs in' before its API listens",
            "mock/standin.py"),
    Setting("IBGW_RESTART_DOWN", "2", "seconds the stand-in's port is refused during a RESTART", "mock/standin.py"),
    Setting("IBGW_STANDIN_API_PORT", "", "the stand-in's internal API port", "mock/standin.py"),
    Setting("IBGW_STANDIN_BIND", "127.0.0.1", "the address the stand-in's forwarder binds", "mock/standin.py"),
    Setting("IBGW_STANDIN_COMMAND_PORT", "7462", "the stand-in's IBC-like command server port", "mock/standin.py"),
    Setting("IBGW_STANDIN_PORT", "", "the stand-in's public API port", "mock/standin.py"),
    Setting("IBGW_HEALTH_HOST", "127.0.0.1", "host the health check probes", "mock/healthcheck.py"),
    Setting("IBGW_HEALTH_PORT", "", "port the health check probes (else IBGW_MOCK_PORT)", "mock/healthcheck.py"),
    Setting("IBGW_HEALTH_TIMEOUT", "5", "health check timeout in seconds", "mock/healthcheck.py"),
    Setting("IBGW_HEALTH_CLIENT_ID", "", "client id the health check uses", "mock/healthcheck.py"),
    Setting("IBGW_HEALTH_MIN_VERSION", "", "lowest server version the health check accepts", "mock/healthcheck.py"),
    Setting("IBGW_HEALTH_STATES", "", "1: the health check also names the Gateway's state (--states)", "mock/healthcheck.py"),
    # the suites (suites/test_soak.py, suites/test_version_matrix.py; set by `make soak` / `make report`)
    Setting("IBGW_SOAK_TIME_SCALE", "1", "soak fault lengths multiplied by this (0.05: a 75 s restart in 3.75 s)",
            "suites/test_soak.py"),
    Setting("IBGW_SOAK_DURATION", "3600", "soak length in seconds", "suites/test_soak.py"),
    Setting("IBGW_SOAK_SCHEDULE", "", "soak faults, KIND@AT[:S],... ('none': no faults; default: one of each the "
            "target allows)", "suites/test_soak.py"),
    Setting("IBGW_SOAK_CLIENTS", "", "soak clients, comma-separated (default: --client, else raw,ib_async)",
            "suites/test_soak.py"),
    Setting("IBGW_SOAK_NO_RECONNECT", "", "1: the soak's clients do not reconnect", "suites/test_soak.py"),
    Setting("IBGW_MATRIX_TARGET", "mock", "version matrix target: mock or docker", "suites/test_version_matrix.py"),
    Setting("IBGW_MATRIX_VERSIONS", "", "version matrix slice, e.g. 10.41,10.45", "suites/test_version_matrix.py"),
    Setting("IBGW_MATRIX_RUNS", "3", "zombie runs per matrix cell", "suites/test_version_matrix.py"),
    Setting("IBGW_MATRIX_LOGIN_DELAY", "1", "the stand-in's login delay in the matrix, seconds",
            "suites/test_version_matrix.py"),
    # the HTML report's allure subprocess (set by the harness, read by that process)
    Setting("IBGW_ALLURE_RESULTS", "", "allure results directory (set for the report subprocess)",
            "evidence/html_report.py"),
    Setting("IBGW_ALLURE_OUTPUT", "", "allure report directory (set for the report subprocess)",
            "evidence/html_report.py"),
    Setting("IBGW_ALLURE_HISTORY", "", "allure history directory (set for the report subprocess)",
            "evidence/html_report.py"),
    Setting("IBGW_ALLURE_NAME", "", "the report's name (set for the report subprocess)", "evidence/html_report.py"),
    # shell and compose files (read there, listed here so one table names every variable)
    Setting("IBGW_MOCK_IMAGE", "ibgw-mock:10.45", "the mock image the compose service runs",
            "gateway-docker/mock/compose.yml"),
    Setting("IBGW_WATCH_INTERVAL", "30", "seconds between the watch sidecar's health checks",
            "gateway-docker/ib-gateway/docker-compose.watch.yml"),
    Setting("IBGW_WATCH_MAX_RESTARTS", "3", "restarts per hour the watch sidecar may ask for",
            "gateway-docker/ib-gateway/docker-compose.watch.yml"),
    Setting("IBGW_WATCH_TRADING_WINDOW", "09:30-16:00", "hours in which the watch sidecar never restarts",
            "gateway-docker/ib-gateway/docker-compose.watch.yml"),
    Setting("IBGW_WATCH_METRICS_PORT", "9464", "the watch sidecar's metrics port on 127.0.0.1",
            "gateway-docker/ib-gateway/docker-compose.watch.yml"),
    Setting("IBGW_WATCH_EVIDENCE_DIR", "./watch-evidence", "where the watch sidecar writes its evidence",
            "gateway-docker/ib-gateway/docker-compose.watch.yml"),
    Setting("IBGW_DOCKER_STATE", "/var/lib/ibgw-docker", "the provisioned Docker engine's state directory",
            "gateway-docker/provision-engine.sh"),
    Setting("IBGW_DOCKER_RUN", "/run/ibgw-docker", "the provisioned Docker engine's run directory",
            "gateway-docker/provision-engine.sh"),
    Setting("IBGW_BASE_IMAGE", "ibgw-base:py3", "the local python3 base image the images build on",
            "gateway-docker/provision-engine.sh, tests/support/engine_rig.py"),
    # the harness's own tests and benchmarks
    Setting("IBGW_FUZZ_INPUTS", "2000", "inputs the mock fuzz test sends (2000 reach the coverage bars 4000 did, in half the CPU; the long fuzz is make fuzz FUZZ_INPUTS=N)",
            "tests/mock/test_fuzz_mock.py"),
    Setting("IBGW_FUZZ_SEED", "8", "the fuzz test's random seed", "tests/mock/test_fuzz_mock.py"),
    Setting("IBGW_INTERRUPT_MARKER", "interrupt-marker.json", "file the interruption test's child pytest writes "
            "when it holds what a test holds (set by the test)", "tests/interrupt_target/run_under_signal.py"),
    Setting("IBGW_SUITE_TIMING", "", "file the suite-timing plugin writes its per-test timings to",
            "benchmarks/suite_timing.py"),
)}
OLD_NAMES: dict[str, str] = {old: s.name for s in SETTINGS.values() for old in s.old_names}
_warned: set[str] = set()



@dataclass(frozen=True)
class Foreign:
    """A variable another tool defines that the harness reads as well (not a
    setting of its own: no IBGW_ prefix, not in the README's table)."""

    name: str
    help: str
    used_by: str


FOREIGN: dict[str, Foreign] = {f.name: f for f in (
    Foreign("DOCKER_HOST", "the local Docker engine (docker-py's variable)", "targets/docker_engine.py"),
    Foreign("REQUESTS_CA_BUNDLE", "a CA bundle requests would put in place of a tcp:// engine's own CA",
            "targets/docker_engine.py"),
    Foreign("CURL_CA_BUNDLE", "as REQUESTS_CA_BUNDLE", "targets/docker_engine.py"),
    Foreign("CI", "set by CI services: the report's executor says CI instead of local", "evidence/session_report.py"),
    Foreign("GITHUB_RUN_NUMBER", "a CI build number for the report (after IBGW_BUILD_ORDER)",
            "evidence/session_report.py"),
    Foreign("CI_PIPELINE_IID", "a CI build number for the report (GitLab)", "evidence/session_report.py"),
    Foreign("BUILD_NUMBER", "a CI build number for the report (Jenkins)", "evidence/session_report.py"),
    # the gnzsnz/ib-gateway image's own variables, honoured by the stand-in that mimics it
    Foreign("TWS_USERID", "the login user (gnzsnz/ib-gateway)", "mock/standin.py"),
    Foreign("TWS_PASSWORD_FILE", "file holding the login password (gnzsnz/ib-gateway)", "mock/standin.py"),
    Foreign("TWS_PASSWORD", "the login password (gnzsnz/ib-gateway)", "mock/standin.py"),
    Foreign("TRADING_MODE", "paper or live (gnzsnz/ib-gateway)", "mock/standin.py"),
    Foreign("READ_ONLY_API", "yes/no (gnzsnz/ib-gateway)", "mock/standin.py"),
    Foreign("IB_GATEWAY_VERSION", "the Gateway build the image carries (gnzsnz/ib-gateway)", "mock/standin.py"),
)}


class UnknownSetting(KeyError):
    """A name missing from SETTINGS: every variable the harness reads is listed there."""


def source(name: str) -> str | None:
    """Which variable gives `name` its value: the name itself, an old name
    (deprecated), or None when neither is set to a non-blank value."""
    setting = SETTINGS.get(name)
    if setting is None:
        raise UnknownSetting(f"{name} is not a harness setting; known: {', '.join(SETTINGS)}")
    for candidate in (name, *setting.old_names):
        if os.environ.get(candidate, "").strip():
            return candidate
    return None


def env(name: str, default: str | None = None) -> str:
    """The stripped value of setting `name`, else `default` (else the
    table's default). An old name still works, with one DeprecationWarning."""
    found = source(name)
    if found is None:
        return SETTINGS[name].default if default is None else default
    if found != name and found not in _warned:
        _warned.add(found)
        warnings.warn(f"{found} is deprecated; set {name} instead", DeprecationWarning, stacklevel=2)
    return os.environ[found].strip()


def foreign_env(name: str, default: str = "") -> str:
    """The stripped value of another tool's variable `name` (listed in
    FOREIGN), else `default` when it is unset or blank."""
    if name not in FOREIGN:
        raise UnknownSetting(f"{name} is not listed in FOREIGN; known: {', '.join(FOREIGN)}")
    return os.environ.get(name, "").strip() or default


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| variable | default | what it sets | read by |", "|---|---|---|---|"]
    for s in SETTINGS.values():
        old = f" (old name: {', '.join(f'`{o}`' for o in s.old_names)})" if s.old_names else ""
        rows.append(f"| `{s.name}` | {f'`{s.default}`' if s.default else ''} | {s.help}{old} | {s.used_by} |")
    return "\n".join(rows)


__all__ = ["FOREIGN", "OLD_NAMES", "PREFIX", "SETTINGS", "Foreign", "Setting", "UnknownSetting", "env", "foreign_env",
           "markdown_table", "source"]
