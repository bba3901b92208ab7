"""`ibgw doctor`: the diagnostic ladder a person runs when trading stops.

Why it judges only from the wire and the host's socket table: it must give
the same answer against a real Gateway as against the mock, so it never asks
the mock's control endpoint anything. Several faults look identical on the
wire (a silent handshake, an API gone red after a disconnect, zombie
saturation: all accept TCP and never answer), so instead of guessing the
doctor gathers the evidence that separates them (the CLOSE_WAIT count on the
port, whether a fresh client id helps, whether the port refuses) and reports
which causes remain possible, most likely first.

The ladder, in order; a rung that cannot run after an earlier failure is
"skip" with the reason:

    port reachable -> version reply -> nextValidId -> managedAccounts ->
    IB connectivity -> startup sync ends -> client id in use -> CLOSE_WAIT sockets ->
    paper or live account

Each cause it names is a row of the one table (causes.py) with its public
source; judge.py holds the rules probe shares, so both commands agree.

Read-only: the raw client refuses order messages. Every wait is bounded:
against a silent Gateway the whole run takes about 2x the timeout (two
handshake attempts), never more than about 3x.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from ..clients.base import (
    PHASE_MANAGED_ACCOUNTS,
    PHASE_NEXT_VALID_ID,
    PHASE_SERVER_VERSION,
    PHASE_TCP,
    ConnectResult,
    HandshakeError,
)
from ..clients.raw import DEFAULT_MAX_VERSION, DEFAULT_MIN_VERSION, RawClient
from ..core.constants import CLIENT_ID_IN_USE, LIVE_PORTS, PAPER_PREFIXES
from ..core.constants import LIVE_CLIENT_ID_RANGE as PROBE_ID_RANGE
from ..core.redact import redact_accounts, redact_text
from ..protocol import messages as m
from ..protocol.messages import In, Message
from ..targets.sockets import SocketRow, SocketTableUnavailable, port_sockets
from .causes import CAUSES, cause_for_text
from .judge import closed_after_accept, connectivity_detail, connectivity_lost, is_non_tws, version_range
from .listener import port_queues
from .zombie import settled_close_wait

# ---------------------------------------------------------------- vocabulary

OK, FAIL, WARN, SKIP = "ok", "fail", "warn", "skip"
VERDICTS = (OK, FAIL, WARN, SKIP)

RUNG_PORT = "port reachable"
RUNG_VERSION = "version reply"
RUNG_NEXT_ID = "nextValidId"
RUNG_ACCOUNTS = "managedAccounts"
RUNG_CONNECTIVITY = "IB connectivity"
RUNG_SYNC = "startup sync ends"
RUNG_CLIENT_ID = "client id in use"
RUNG_CLOSE_WAIT = "CLOSE_WAIT sockets"
RUNG_ACCOUNT_KIND = "paper or live account"
RUNGS = (RUNG_PORT, RUNG_VERSION, RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_CONNECTIVITY, RUNG_SYNC, RUNG_CLIENT_ID,
         RUNG_CLOSE_WAIT, RUNG_ACCOUNT_KIND)

# The causes doctor can name: titles from the one table (causes.py), which
# also holds what each means, its fix and its public source. `diagnosis` is
# a list of these titles (most likely first), sometimes with a detail
# appended after ": "; DoctorResult.causes carries the rows themselves.
CAUSE_DOWN = CAUSES["down"].title
CAUSE_UNREACHABLE = CAUSES["unreachable"].title
CAUSE_FORWARDER = CAUSES["forwarder"].title
CAUSE_CLIENT_CAP = CAUSES["client_cap"].title
CAUSE_NOT_LOGGED_IN = CAUSES["not_logged_in"].title
CAUSE_RED = CAUSES["red"].title
CAUSE_WEDGE = CAUSES["wedge"].title
CAUSE_ZOMBIE = CAUSE_WEDGE  # CLOSE_WAIT with a silent API: the wedge's public signature
CAUSE_CLOSED_AFTER_START = CAUSES["closed_after_start"].title
CAUSE_ID_STUCK = CAUSES["id_stuck"].title
CAUSE_API_NOT_READY = CAUSES["api_not_ready"].title
CAUSE_LOGIN_INCOMPLETE = CAUSES["login_incomplete"].title
CAUSE_SYNC = CAUSES["sync"].title
CAUSE_TRANSIENT = CAUSES["transient"].title
CAUSE_ZOMBIES_PRESENT = CAUSES["zombies_present"].title
CAUSE_LIVE = CAUSES["live"].title
CAUSE_LIVE_PORT = CAUSES["live_port"].title
CAUSE_VERSION_RANGE = CAUSES["version_range"].title
CAUSE_NON_TWS = CAUSES["non_tws"].title
CAUSE_CONNECTIVITY_LOST = CAUSES["connectivity_lost"].title

SILENT_FAMILY = (CAUSE_NOT_LOGGED_IN, CAUSE_RED, CAUSE_ZOMBIE)

CLOSE_WAIT_THRESHOLD = 3  # at or above: zombie saturation is the leading verdict
# Processes that listen in front of a Gateway: when one owns the port, the
# Gateway's own sockets (and its zombies) are elsewhere (a container's
# network namespace, the far end of a tunnel).
FORWARDERS = {"socat", "docker-proxy", "com.docker.backend", "vpnkit", "vpnkit-bridge", "rootlessport",
              "slirp4netns", "gvproxy", "ssh", "sshd", "kubectl", "limactl"}
MAX_SOCKET_ROWS = 10  # socket rows kept as evidence

# ---------------------------------------------------------------- remediations

FIX_DOWN = CAUSES["down"].fix
FIX_UNREACHABLE = CAUSES["unreachable"].fix
FIX_FORWARDER = CAUSES["forwarder"].fix
FIX_SILENT = CAUSES["not_logged_in"].fix
FIX_ZOMBIE = CAUSES["wedge"].fix
FIX_CHURN = CAUSES["zombies_present"].fix
FIX_ID = CAUSES["id_stuck"].fix
FIX_API_NOT_READY = CAUSES["api_not_ready"].fix
FIX_LOGIN = CAUSES["login_incomplete"].fix
FIX_SYNC = CAUSES["sync"].fix
FIX_LIVE = CAUSES["live"].fix
FIX_LIVE_PORT = CAUSES["live_port"].fix
FIX_REMOTE_SOCKETS = ("run doctor on the Gateway's host (or read /proc/net/tcp6 inside its container) to count "
                      "CLOSE_WAIT sockets")


FIX_HOST_NAME = "check the host name"
RESOLVE_TIMEOUT_S = 5.0  # most a name lookup may take, whatever --timeout is


# ---------------------------------------------------------------- the host name (probe shares it)


@dataclass(frozen=True)
class HostProblem:
    """Why a host name cannot be connected to before any TCP is tried.

    Why its own cause: a name that does not resolve fails the TCP connect
    with "[Errno -2] Name or service not known", which every tcp_connect
    message would otherwise explain as "nothing is listening"; the fix is
    the name, not the Gateway."""

    cause: str  # "cannot resolve host NAME"
    meaning: str  # what the resolver said
    hint: str = FIX_HOST_NAME


def host_port_in_host(host: str) -> tuple[str, str] | None:
    """(HOST, PORT) when --host was given as HOST:PORT (or [V6]:PORT), else
    None: a name, an IPv4 address or a bare IPv6 literal ('::1' is not
    HOST:PORT). Callers make it a usage error naming --host H --port P."""
    if ":" not in host:
        return None
    try:
        ipaddress.ip_address(host)
        return None  # a bare IPv6 literal (with or without a scope id)
    except ValueError:
        pass
    name, _, port = host.rpartition(":")
    if not port.isdigit() or not name:
        return None
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name, port


async def diagnose_host(host: str, timeout: float = RESOLVE_TIMEOUT_S) -> HostProblem | None:
    """None when `host` resolves; otherwise why not (a HostProblem).

    The lookup runs in a daemon thread bounded by `timeout` (at most
    RESOLVE_TIMEOUT_S): a resolver that hangs must not hold the command,
    and an abandoned daemon thread, unlike the default executor's, does not
    hold the interpreter's exit either."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if answer.done():
            return
        if error is None:
            answer.set_result(None)
        else:
            answer.set_exception(error)

    def lookup() -> None:
        error: BaseException | None = None
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    limit = min(timeout, RESOLVE_TIMEOUT_S)
    try:
        async with asyncio.timeout(limit):
            await answer
    except TimeoutError:
        return HostProblem(f"cannot resolve host {host}", f"the resolver did not answer within {limit:g} s",
                           f"{FIX_HOST_NAME} and this host's DNS settings")
    except socket.gaierror as exc:
        return HostProblem(f"cannot resolve host {host}",
                           f"no address for that name here ({exc.strerror or exc}): a typo, or a name only "
                           "another host or network knows")
    except (OSError, UnicodeError) as exc:
        return HostProblem(f"cannot resolve host {host}", f"not a usable host name ({exc})")
    return None


@dataclass
class Rung:
    name: str
    verdict: str  # ok | fail | warn | skip
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: str = ""
    summary: str = ""  # one line for humans: what was seen (or why skipped)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DoctorResult:
    host: str
    port: int
    client_id: int
    timeout: float
    rungs: list[Rung] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)  # the causes that remain possible, most likely first
    # The table row behind each diagnosis line (same order): meaning, fix and public source.
    causes: list[dict[str, Any]] = field(default_factory=list)
    healthy: bool = False
    elapsed_s: float = 0.0

    def rung(self, name: str) -> Rung:
        for rung in self.rungs:
            if rung.name == name:
                return rung
        raise KeyError(name)

    @property
    def exit_code(self) -> int:
        return 0 if self.healthy else 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["exit_code"] = self.exit_code
        return data


# ---------------------------------------------------------------- evidence gathering


@dataclass
class Attempt:
    """One handshake attempt with the raw client, classified."""

    client_id: int
    # ok | refused | tcp_timeout | tcp_error | closed | silent | id_in_use | no_next_id | no_accounts
    # | closed_after_start | non_tws | version_range
    kind: str
    result: ConnectResult | None
    client: RawClient  # connected only when kind == "ok"; after a failure it still holds what arrived
    cause: str = ""
    elapsed_s: float = 0.0

    @property
    def phases_ms(self) -> dict[str, float]:
        phases = self.result.phases if self.result is not None else {}
        return {p: round(s * 1000, 1) for p, s in phases.items()}

    @property
    def codes(self) -> list[int]:
        return [msg.code for msg in self.result.messages] if self.result is not None else []

    def brief(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "outcome": self.kind, "cause": self.cause,
                "elapsed_s": round(self.elapsed_s, 3), "phases_ms": self.phases_ms,
                "gateway_codes": self.codes}


async def _attempt(host: str, port: int, client_id: int, timeout: float,
                   client_range: tuple[int, int] | None = None) -> Attempt:
    low, high = client_range or (DEFAULT_MIN_VERSION, DEFAULT_MAX_VERSION)
    client = RawClient(low, high, await_account_value=False)
    started = time.monotonic()
    result: ConnectResult | None
    try:
        result = await client.connect(host, port, client_id, timeout=timeout, readonly=True)
    except HandshakeError as exc:
        result = exc.result
        elapsed = time.monotonic() - started
        if result is not None:
            # What arrived before the failure lives on the client (ConnectResult
            # only copies accounts and nextValidId on success).
            result.accounts = list(client.accounts)
            result.next_valid_id = client.next_valid_id
        return Attempt(client_id, _classify(exc, result), result, client, exc.cause, elapsed)
    return Attempt(client_id, "ok", result, client, "", time.monotonic() - started)


def _classify(exc: HandshakeError, result: ConnectResult | None) -> str:
    phases = result.phases if result is not None else {}
    # RawClient's wording for a timeout in any phase (raw.py: "no answer within N s").
    timed_out = exc.cause.startswith("no answer within")
    if is_non_tws(exc.cause):
        return "non_tws"
    if version_range(exc.cause) is not None:
        return "version_range"
    if PHASE_TCP not in phases:
        if "refused" in exc.cause.lower():
            return "refused"
        return "tcp_timeout" if timed_out else "tcp_error"
    if PHASE_SERVER_VERSION not in phases:
        return "silent" if timed_out else "closed"
    if result is not None and any(msg.code == CLIENT_ID_IN_USE for msg in result.messages):
        return "id_in_use"
    if PHASE_NEXT_VALID_ID in phases:
        # RawClient labels the whole nextValidId+managedAccounts wait as
        # next_valid_id; the phases say which of the two arrived.
        return "no_accounts"
    return "no_next_id" if timed_out else "closed_after_start"


@dataclass
class SocketSurvey:
    visible: bool
    reason: str = ""  # why the table could not be read
    close_wait: list[SocketRow] = field(default_factory=list)
    transient: int = 0  # CLOSE_WAIT sockets the Gateway closed while we watched
    listeners: list[SocketRow] = field(default_factory=list)
    established: int = 0

    @property
    def count(self) -> int:
        return len(self.close_wait)

    @property
    def forwarder(self) -> str | None:
        for row in self.listeners:
            if row.process and row.process.lower() in FORWARDERS:
                return row.process
        return None

    @property
    def conclusive_zero(self) -> bool:
        """0 CLOSE_WAIT here really means the Gateway has none: we see its
        listening socket and no forwarder stands in front of it."""
        return self.visible and self.count == 0 and bool(self.listeners) and self.forwarder is None


async def _is_local(host: str, port: int) -> bool:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    addresses = {str(info[4][0]).split("%")[0] for info in infos}
    try:
        own = {a.address.split("%")[0] for nic in psutil.net_if_addrs().values() for a in nic}
    except Exception:  # noqa: BLE001 - a missing interface list only makes us conservative
        own = set()
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
            if ip.is_loopback or ip.is_unspecified or address in own:
                return True
        except ValueError:
            continue
    return False


async def survey_sockets(host: str, port: int, settle: float) -> SocketSurvey:
    """The host's view of the Gateway port, taken before doctor connects so
    its own sockets are not counted. A CLOSE_WAIT socket only counts if it
    is still there after `settle` seconds: a healthy Gateway closes its side
    within milliseconds, a zombie never does."""
    if not await _is_local(host, port):
        return SocketSurvey(False, f"{host} is not this host: its socket table is not visible here")
    try:
        first = await asyncio.to_thread(port_sockets, port)
        before = sum(1 for row in first if row.status == psutil.CONN_CLOSE_WAIT)
        if before:
            await settled_close_wait(port, 0, settle)
        rows = await asyncio.to_thread(port_sockets, port) if before else first
    except (SocketTableUnavailable, OSError, psutil.Error) as exc:
        return SocketSurvey(False, f"socket table unavailable: {exc}")
    close_wait = [row for row in rows if row.status == psutil.CONN_CLOSE_WAIT]
    return SocketSurvey(True, "", close_wait, max(0, before - len(close_wait)),
                        [row for row in rows if row.status == psutil.CONN_LISTEN],
                        sum(1 for row in rows if row.status == psutil.CONN_ESTABLISHED))


def _for_account(msg_id: int, account: str, msg: Message) -> bool:
    """A reply of this kind for this account (account downloads run one account at a time)."""
    return msg.msg_id == msg_id and msg.fields.get("account") == account


async def check_sync(client: RawClient, timeout: float) -> dict[str, Any]:
    """Positions, account download and executions requested together, each
    waited for its end message (bounded by `timeout`). Done step by step
    with RawClient.collect rather than account_snapshot because a timeout in
    account_snapshot does not say which end message was missing."""
    accounts = list(client.accounts)

    async def positions() -> int:
        got = await client.collect(m.req_positions(), lambda msg: msg.msg_id == In.POSITION_DATA,
                                   lambda msg: msg.msg_id == In.POSITION_END, timeout)
        return len(got)

    ended_accounts: list[str] = []
    account_values = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    async def download() -> None:
        # One account subscription at a time (the API allows one), all of
        # them within the one timeout.
        nonlocal account_values
        for account in accounts:
            got = await client.collect(
                m.req_account_updates(True, account),
                functools.partial(_for_account, In.ACCT_VALUE, account),
                functools.partial(_for_account, In.ACCT_DOWNLOAD_END, account),
                max(0.001, deadline - loop.time()))
            account_values += len(got)
            ended_accounts.append(account)
            client.send(m.req_account_updates(False, account))

    async def executions() -> None:
        req_id = client.new_req_id()
        await client.collect(m.req_executions(client.server_version, req_id), lambda msg: False,
                             lambda msg: msg.msg_id == In.EXECUTION_DATA_END and msg.int("req_id") == req_id,
                             timeout)

    async with asyncio.timeout(timeout + 1.0):  # a backstop; each collect is bounded by `timeout`
        outcomes = await asyncio.gather(positions(), download(), executions(), return_exceptions=True)
    pos, acc, exe = outcomes
    errors = {name: _why(o, timeout) for name, o in zip(("positions", "account", "executions"), outcomes, strict=True)
              if isinstance(o, BaseException)}
    return {
        "positions_end": not isinstance(pos, BaseException),
        "positions": pos if isinstance(pos, int) else None,
        "account_download_end": redact_accounts(ended_accounts),
        "account_download_missing": redact_accounts([a for a in accounts if a not in ended_accounts]),
        "account_values": account_values,
        "executions_end": not isinstance(exe, BaseException),
        "errors": errors,
        "_download_ok": not isinstance(acc, BaseException) and len(ended_accounts) == len(accounts),
    }


def _why(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no end message within {timeout:g} s"
    return str(exc) or type(exc).__name__


# ---------------------------------------------------------------- the ladder


def fresh_client_id(*avoid: int) -> int:
    rng = random.SystemRandom()
    while True:
        candidate = rng.randint(*PROBE_ID_RANGE)
        if candidate not in avoid:
            return candidate


async def run_doctor(host: str = "127.0.0.1", port: int = 4002, *, client_id: int | None = None,
                     timeout: float = 5.0, close_wait_threshold: int = CLOSE_WAIT_THRESHOLD,
                     settle: float | None = None, client_range: tuple[int, int] | None = None) -> DoctorResult:
    """Run every rung and return the structured result. Never raises for a
    Gateway fault; every connection it opens is closed before it returns."""
    started = time.monotonic()
    if client_id is None:
        client_id = fresh_client_id()
    settle = min(0.5, timeout / 4) if settle is None else settle
    result = DoctorResult(host, port, client_id, timeout)
    rungs: dict[str, Rung] = {}
    diagnosis: list[str] = []
    attempts: list[Attempt] = []
    try:
        unresolved = await diagnose_host(host, timeout)
        if unresolved is not None:
            _unresolved_rungs(unresolved, host, port, rungs, diagnosis)
            return _finish(result, rungs, diagnosis, started)
        survey = await survey_sockets(host, port, settle)
        first = await _attempt(host, port, client_id, timeout, client_range)
        attempts.append(first)
        active = await _handshake_rungs(first, _Ladder(rungs, diagnosis, attempts, survey, host, port, timeout,
                                                       close_wait_threshold, client_range))
        if active is not None:
            budget = max(0.5, min(timeout, started + 2.75 * timeout - time.monotonic()))
            _sync_rung(await _safe_sync(active.client, budget), rungs, diagnosis, budget)
            _connectivity_rung(active, rungs, diagnosis)  # after the sync: notices that came meanwhile count
            _account_kind_rung(active, port, rungs, diagnosis)
        _close_wait_rung(survey, port, close_wait_threshold, rungs, diagnosis, healthy_handshake=active is not None)
    finally:
        for attempt in attempts:
            try:
                await asyncio.wait_for(attempt.client.disconnect(), 5.0)
            except (asyncio.TimeoutError, OSError, ConnectionError):
                pass
    return _finish(result, rungs, diagnosis, started)


def _finish(result: DoctorResult, rungs: dict[str, Rung], diagnosis: list[str], started: float) -> DoctorResult:
    for name in RUNGS:
        result.rungs.append(rungs.get(name) or Rung(name, SKIP, {}, "", "not reached"))
    result.diagnosis = _dedupe(diagnosis)
    result.causes = [_cause_row(text) for text in result.diagnosis]
    result.healthy = all(r.verdict in (OK, SKIP) for r in result.rungs) and not result.diagnosis
    result.elapsed_s = time.monotonic() - started
    return result


def _unresolved_rungs(problem: HostProblem, host: str, port: int, rungs: dict[str, Rung],
                      diagnosis: list[str]) -> None:
    """A host name that does not resolve: the one cause, nothing else tried."""
    rungs[RUNG_PORT] = Rung(RUNG_PORT, FAIL, {"target": f"{host}:{port}", "outcome": "unresolved",
                                              "cause": problem.cause, "resolver": problem.meaning},
                            problem.hint, f"{problem.cause}: {problem.meaning}")
    diagnosis.append(problem.cause)
    _skip_after(rungs, problem.cause, *RUNGS[1:])


async def _safe_sync(client: RawClient, timeout: float) -> dict[str, Any]:
    try:
        return await check_sync(client, timeout)
    except (TimeoutError, ConnectionError, OSError) as exc:
        return {"errors": {"sync": _why(exc, timeout)}, "positions_end": False, "account_download_missing": [],
                "executions_end": False, "_download_ok": False, "account_download_end": []}


@dataclass
class _Ladder:
    """The handshake rungs' shared state: what one doctor run found so far
    (its rungs, its causes, its attempts) and where it looks. Each rung
    function below fills it for one outcome of the first handshake."""

    rungs: dict[str, Rung]
    diagnosis: list[str]
    attempts: list[Attempt]
    survey: SocketSurvey
    host: str
    port: int
    timeout: float
    threshold: int
    client_range: tuple[int, int] | None = None

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    async def fresh_attempt(self, first: Attempt) -> Attempt:
        """A second handshake with a fresh client id: does the id matter?"""
        second = await _attempt(self.host, self.port, fresh_client_id(first.client_id), self.timeout,
                                self.client_range)
        self.attempts.append(second)
        return second


async def _handshake_rungs(first: Attempt, ladder: _Ladder) -> Attempt | None:
    """Rungs 1-4 and 6 from one or two handshake attempts: one function per
    outcome of the first attempt. Returns the attempt whose client is
    connected and ready, or None."""
    if first.kind in _PORT_FAILURES:
        _port_rung_failed(first, ladder)
        return None
    tcp_ms = first.phases_ms.get(PHASE_TCP)
    ladder.rungs[RUNG_PORT] = Rung(RUNG_PORT, OK, {"target": ladder.target, "tcp_connect_ms": tcp_ms},
                                   summary=f"{ladder.target} accepted TCP in {tcp_ms} ms")
    before_version = _BEFORE_VERSION.get(first.kind)
    if before_version is not None:
        return await before_version(first, ladder)
    ladder.rungs[RUNG_VERSION] = _version_rung(first, ladder.diagnosis)
    after_version = _AFTER_VERSION.get(first.kind)
    if after_version is not None:
        return await after_version(first, ladder)
    return await _ready_rungs(first, ladder.rungs, ladder.diagnosis, first_id_refused=False)


_PORT_FAILURES = ("refused", "tcp_timeout", "tcp_error")


def _port_rung_failed(first: Attempt, ladder: _Ladder) -> None:
    """Port reachable: refused, no answer, or a TCP error."""
    rungs, diagnosis, target = ladder.rungs, ladder.diagnosis, ladder.target
    survey = ladder.survey
    ev = {"target": target, "outcome": first.kind, "cause": first.cause,
          "listener_visible": [_row(r) for r in survey.listeners] if survey.visible else None}
    if first.kind == "refused":
        rungs[RUNG_PORT] = Rung(RUNG_PORT, FAIL, ev, FIX_DOWN, f"{target} refused the connection")
        diagnosis.append(CAUSE_DOWN)
    elif first.kind == "tcp_timeout":
        rungs[RUNG_PORT] = Rung(RUNG_PORT, FAIL, ev, FIX_UNREACHABLE,
                                f"no answer to the TCP connect within {ladder.timeout:g} s")
        diagnosis.append(CAUSE_UNREACHABLE)
    else:
        rungs[RUNG_PORT] = Rung(RUNG_PORT, FAIL, ev, FIX_UNREACHABLE + "; " + FIX_DOWN,
                                f"TCP connect failed: {first.cause}")
        diagnosis.extend([CAUSE_UNREACHABLE, CAUSE_DOWN])
    _skip_after(rungs, "no TCP connection", RUNG_VERSION, RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_CONNECTIVITY,
                RUNG_SYNC, RUNG_CLIENT_ID, RUNG_ACCOUNT_KIND)


async def _version_not_tws(first: Attempt, ladder: _Ladder) -> Attempt | None:
    """Version reply: the port answers, but not as a TWS API."""
    rungs = ladder.rungs
    rungs[RUNG_VERSION] = Rung(RUNG_VERSION, FAIL, {"outcome": "not a TWS reply", "cause": first.cause,
                                                    "phases_ms": first.phases_ms}, CAUSES["non_tws"].fix,
                               f"{first.cause}: wrong port")
    ladder.diagnosis.append(f"{CAUSE_NON_TWS}: {first.cause}")
    _skip_after(rungs, "the port does not speak the TWS API", RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_CONNECTIVITY,
                RUNG_SYNC, RUNG_CLIENT_ID, RUNG_ACCOUNT_KIND)
    return None


async def _version_out_of_range(first: Attempt, ladder: _Ladder) -> Attempt | None:
    """Version reply: outside the client's range, which refused it."""
    rungs = ladder.rungs
    server, who, bound = version_range(first.cause) or (0, "", 0)
    ev = {**_version_ev(first), "outcome": "version reply outside the client's range", "cause": first.cause,
          "client_bound": bound}
    rungs[RUNG_VERSION] = Rung(RUNG_VERSION, FAIL, ev, CAUSES["version_range"].fix, first.cause)
    ladder.diagnosis.append(f"{CAUSE_VERSION_RANGE}: {first.cause}")
    _skip_after(rungs, "the client refused the Gateway's server version", RUNG_NEXT_ID, RUNG_ACCOUNTS,
                RUNG_CONNECTIVITY, RUNG_SYNC, RUNG_CLIENT_ID, RUNG_ACCOUNT_KIND)
    return None


async def _version_closed(first: Attempt, ladder: _Ladder) -> Attempt | None:
    """Version reply: the connection closed right after accept."""
    rungs, survey = ladder.rungs, ladder.survey
    judged = closed_after_accept(survey.established if survey.visible else None, ladder.port)
    ev = {"outcome": "closed before the version reply", "cause": first.cause,
          "phases_ms": first.phases_ms, "listener": [_row(r) for r in survey.listeners],
          "established_on_port": survey.established if survey.visible else None}
    fix = "; or ".join(row.fix for row in judged.causes)
    rungs[RUNG_VERSION] = Rung(RUNG_VERSION, FAIL, ev, fix,
                               "the connection was closed right after accept, with no version reply "
                               f"({judged.detail})")
    for row in judged.causes:
        ladder.diagnosis.append(f"{row.title}: {judged.detail}" if row.key == "client_cap" else row.title)
    _skip_after(rungs, "no version reply", RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_CONNECTIVITY, RUNG_SYNC,
                RUNG_CLIENT_ID, RUNG_ACCOUNT_KIND)
    return None


async def _version_silent(first: Attempt, ladder: _Ladder) -> Attempt | None:
    """Version reply: TCP accepted, nothing said; a fresh client id tells
    a transient stall from a silent (wedged, zombie, dialog) Gateway."""
    rungs, diagnosis, survey, timeout = ladder.rungs, ladder.diagnosis, ladder.survey, ladder.timeout
    second = await ladder.fresh_attempt(first)
    fresh_ev = {"fresh_client_id": second.client_id, "fresh_attempt": second.brief(),
                "fresh_id_helps": second.kind == "ok"}
    if second.kind == "ok":
        rungs[RUNG_VERSION] = Rung(
            RUNG_VERSION, WARN, {**_version_ev(second), "first_attempt": first.brief(), **fresh_ev},
            "if this repeats, the Gateway is overloaded or restarting: check its log",
            f"the first handshake got no version reply within {timeout:g} s; a second one did "
            f"(server version {second.result.server_version if second.result else '?'})")
        diagnosis.append(CAUSE_TRANSIENT)
        return await _ready_rungs(second, rungs, diagnosis, first_id_refused=False)
    ev = {"outcome": f"TCP accepted, no version reply within {timeout:g} s", "first_attempt": first.brief(),
          **fresh_ev, "close_wait": survey.count if survey.visible else None}
    remaining = _silent_family(survey, ladder.threshold)
    if survey.visible:  # the listener's queues, read after our own unanswered attempts (listener.py)
        queues = await asyncio.to_thread(port_queues, ladder.port)
        ev["listener_queues"] = queues.to_dict()
        if queues.wedged:
            ev["wedge"] = queues.signature
            remaining = [CAUSE_WEDGE, *(c for c in remaining if c != CAUSE_WEDGE)]
    if second.kind == "refused":
        remaining = [CAUSE_DOWN]  # it went away between the attempts: mid-restart
        ev["note"] = "the port refused the second attempt: the Gateway went down while doctor ran"
    remediation = FIX_ZOMBIE if remaining[0] == CAUSE_ZOMBIE else (
        FIX_DOWN if remaining == [CAUSE_DOWN] else FIX_SILENT)
    rungs[RUNG_VERSION] = Rung(RUNG_VERSION, FAIL, ev, remediation,
                               f"TCP accepted, but no version reply within {timeout:g} s "
                               f"(fresh client id {second.client_id}: {_outcome_text(second, timeout)})"
                               + (f"; {ev['wedge']}" if ev.get("wedge") else ""))
    diagnosis.extend(remaining)
    _skip_after(rungs, "no version reply", RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_CONNECTIVITY, RUNG_SYNC,
                RUNG_ACCOUNT_KIND)
    rungs[RUNG_CLIENT_ID] = Rung(
        RUNG_CLIENT_ID, SKIP, {"client_id": first.client_id, **fresh_ev}, "",
        f"not reached: the Gateway never asked for a client id; a fresh id ({second.client_id}) did not "
        "help either, so the client id is not the cause")
    return None


async def _client_id_refused(first: Attempt, ladder: _Ladder) -> Attempt | None:
    """nextValidId / client id: 326, or a bare close after startApi; a
    fresh client id tells a stuck id from an API that takes no client."""
    rungs, diagnosis, timeout = ladder.rungs, ladder.diagnosis, ladder.timeout
    second = await ladder.fresh_attempt(first)
    fresh_ev = {"fresh_client_id": second.client_id, "fresh_attempt": second.brief(),
                "fresh_id_helps": second.kind == "ok"}
    refused_326 = first.kind == "id_in_use"
    what = (f"client id {first.client_id} refused with error 326 (already in use)" if refused_326 else
            f"the Gateway closed the connection after startApi with no error message, no 326 ({first.cause})")
    if second.kind == "ok":
        rungs[RUNG_CLIENT_ID] = Rung(
            RUNG_CLIENT_ID, FAIL, {"client_id": first.client_id, "error_326": refused_326,
                                   "first_attempt": first.brief(), **fresh_ev}, FIX_ID,
            f"{what}; a fresh client id {second.client_id} works")
        if not refused_326:
            diagnosis.append(CAUSE_CLOSED_AFTER_START)
        diagnosis.append(CAUSE_ID_STUCK)
        return await _ready_rungs(second, rungs, diagnosis, first_id_refused=True, first=first)
    ev = {"first_attempt": first.brief(), **fresh_ev}
    rungs[RUNG_NEXT_ID] = Rung(RUNG_NEXT_ID, FAIL, ev, FIX_API_NOT_READY,
                               f"{what}; a fresh client id {second.client_id} failed too "
                               f"({_outcome_text(second, timeout)})")
    rungs[RUNG_CLIENT_ID] = Rung(
        RUNG_CLIENT_ID, FAIL if refused_326 else WARN,
        {"client_id": first.client_id, "error_326": refused_326, **fresh_ev}, FIX_API_NOT_READY,
        f"{what}; a fresh id did not help: the Gateway's API is not taking clients")
    diagnosis.append(CAUSE_API_NOT_READY if refused_326 else CAUSE_CLOSED_AFTER_START)
    _skip_after(rungs, "nextValidId never came", RUNG_ACCOUNTS, RUNG_CONNECTIVITY, RUNG_SYNC, RUNG_ACCOUNT_KIND)
    return None


async def _no_next_valid_id(first: Attempt, ladder: _Ladder) -> Attempt | None:
    """nextValidId: startApi sent, it never came."""
    rungs, diagnosis, timeout = ladder.rungs, ladder.diagnosis, ladder.timeout
    accounts_seen = PHASE_MANAGED_ACCOUNTS in (first.result.phases if first.result else {})
    rungs[RUNG_NEXT_ID] = Rung(
        RUNG_NEXT_ID, FAIL, {"outcome": f"no nextValidId within {timeout:g} s", "attempt": first.brief(),
                             "managed_accounts_arrived": accounts_seen}, FIX_API_NOT_READY,
        f"startApi sent, nextValidId never came within {timeout:g} s"
        + (" (managedAccounts did)" if accounts_seen else ""))
    if accounts_seen:
        rungs[RUNG_ACCOUNTS] = Rung(RUNG_ACCOUNTS, OK, _accounts_ev(first),
                                    summary=f"accounts {_accounts_text(first)}")
    rungs[RUNG_CLIENT_ID] = Rung(RUNG_CLIENT_ID, OK, {"client_id": first.client_id, "error_326": False},
                                 summary=f"client id {first.client_id} accepted (no error 326)")
    diagnosis.append(CAUSE_API_NOT_READY)
    if accounts_seen:  # the account kind is known even though the API is not ready
        _account_kind_rung(first, ladder.port, rungs, diagnosis)
    _skip_after(rungs, "the API is not ready", RUNG_ACCOUNTS, RUNG_CONNECTIVITY, RUNG_SYNC, RUNG_ACCOUNT_KIND)
    return None


async def _no_managed_accounts(first: Attempt, ladder: _Ladder) -> Attempt | None:
    """managedAccounts: nextValidId came, no account listed (login incomplete)."""
    rungs, timeout = ladder.rungs, ladder.timeout
    rungs[RUNG_NEXT_ID] = Rung(RUNG_NEXT_ID, OK, _next_id_ev(first), summary=_next_id_summary(first))
    rungs[RUNG_ACCOUNTS] = Rung(
        RUNG_ACCOUNTS, FAIL, {"outcome": f"no non-empty managedAccounts within {timeout:g} s",
                              "attempt": first.brief()}, FIX_LOGIN,
        f"nextValidId came, but managedAccounts listed no account within {timeout:g} s")
    rungs[RUNG_CLIENT_ID] = Rung(RUNG_CLIENT_ID, OK, {"client_id": first.client_id, "error_326": False},
                                 summary=f"client id {first.client_id} accepted")
    ladder.diagnosis.append(CAUSE_LOGIN_INCOMPLETE)
    _skip_after(rungs, "no managed accounts", RUNG_CONNECTIVITY, RUNG_SYNC, RUNG_ACCOUNT_KIND)
    return None


_RungStep = Callable[[Attempt, _Ladder], Awaitable["Attempt | None"]]
# The first attempt's outcome -> the function that writes its rungs, before
# and after the version rung.
_BEFORE_VERSION: dict[str, _RungStep] = {"non_tws": _version_not_tws, "version_range": _version_out_of_range,
                                         "closed": _version_closed, "silent": _version_silent}
_AFTER_VERSION: dict[str, _RungStep] = {"id_in_use": _client_id_refused, "closed_after_start": _client_id_refused,
                                        "no_next_id": _no_next_valid_id, "no_accounts": _no_managed_accounts}

async def _ready_rungs(attempt: Attempt, rungs: dict[str, Rung], diagnosis: list[str], *, first_id_refused: bool,
                       first: Attempt | None = None) -> Attempt:
    """nextValidId, managedAccounts and client id for a ready connection."""
    ev = _next_id_ev(attempt)
    if first_id_refused and first is not None:
        ev["note"] = f"via fresh client id {attempt.client_id}; id {first.client_id} was refused"
        rungs[RUNG_NEXT_ID] = Rung(RUNG_NEXT_ID, WARN, ev, FIX_ID,
                                   f"{_next_id_summary(attempt)}, but only with a fresh client id")
    else:
        rungs[RUNG_NEXT_ID] = Rung(RUNG_NEXT_ID, OK, ev, summary=_next_id_summary(attempt))
    rungs[RUNG_ACCOUNTS] = Rung(RUNG_ACCOUNTS, OK, _accounts_ev(attempt),
                                summary=f"accounts {_accounts_text(attempt)}")
    rungs.setdefault(RUNG_CLIENT_ID, Rung(RUNG_CLIENT_ID, OK, {"client_id": attempt.client_id, "error_326": False},
                                          summary=f"client id {attempt.client_id} accepted (no error 326)"))
    return attempt


def _version_rung(attempt: Attempt, diagnosis: list[str]) -> Rung:
    """OK, or WARN when the build's maximum is below the minimum of a client
    library installed here: that client cannot connect to this Gateway
    although doctor's own (wider) range can."""
    ev = _version_ev(attempt)
    build_max = ev.get("build_max_server_version")
    too_new = [(name, low) for name, low in installed_client_floors().items()
               if build_max is not None and build_max < low]
    if not too_new:
        return Rung(RUNG_VERSION, OK, ev, summary=_version_summary(attempt))
    lines = [f"the Gateway's maximum ({build_max}) is below {name}'s minimum ({low})" for name, low in too_new]
    ev["clients_out_of_range"] = {name: low for name, low in too_new}
    for line in lines:
        diagnosis.append(f"{CAUSE_VERSION_RANGE}: {line}: upgrade the Gateway or use an older client")
    return Rung(RUNG_VERSION, WARN, ev, CAUSES["version_range"].fix,
                f"{_version_summary(attempt)}; {'; '.join(lines)}")


def installed_client_floors() -> dict[str, int]:
    """The lowest server version each client library installed here accepts
    (read from the library itself, never assumed): ib_async checks
    `Client.MinClientVersion` after the version reply (its client.py); the
    official ibapi offers MIN_CLIENT_VER.."""
    floors: dict[str, int] = {}
    with contextlib.suppress(Exception):  # not installed, or a layout we do not know: say nothing
        from ib_async.client import Client as IbAsyncClient

        floors["ib_async"] = int(IbAsyncClient.MinClientVersion)
    with contextlib.suppress(Exception):
        from ibapi import server_versions

        floors["ibapi"] = int(server_versions.MIN_CLIENT_VER)
    return floors


def _connectivity_rung(attempt: Attempt, rungs: dict[str, Rung], diagnosis: list[str]) -> None:
    """1100 without a later 1101/1102: the API answers, but the Gateway has
    no connection to IB, so orders and data do not flow: not ready."""
    messages = list(attempt.client.messages)
    codes = [msg.code for msg in messages]
    ev = {"gateway_codes": codes, "farm_notices": [f"{msg.code} {msg.message}" for msg in messages
                                                   if 2100 <= msg.code < 2200]}
    lost = connectivity_lost(messages)
    if lost is None:
        rungs[RUNG_CONNECTIVITY] = Rung(RUNG_CONNECTIVITY, OK, ev,
                                        summary="no 1100 (connectivity lost) outstanding")
        return
    detail = connectivity_detail(lost)
    ev["connectivity_lost"] = detail
    rungs[RUNG_CONNECTIVITY] = Rung(RUNG_CONNECTIVITY, FAIL, ev, CAUSES["connectivity_lost"].fix,
                                    f"API up but IB connectivity lost: {detail}; not ready to trade")
    diagnosis.append(f"{CAUSE_CONNECTIVITY_LOST}: {detail}")


def _sync_rung(sync: dict[str, Any], rungs: dict[str, Rung], diagnosis: list[str], timeout: float) -> None:
    missing = []
    if not sync.get("positions_end"):
        missing.append("positions (positionEnd)")
    if not sync.get("_download_ok"):
        which = ", ".join(sync.get("account_download_missing") or []) or "?"
        missing.append(f"account download (accountDownloadEnd for {which})")
    if not sync.get("executions_end"):
        missing.append("executions (execDetailsEnd)")
    ev = {k: v for k, v in sync.items() if not k.startswith("_")}
    ev["missing"] = missing
    if missing:
        rungs[RUNG_SYNC] = Rung(RUNG_SYNC, FAIL, ev, FIX_SYNC,
                                f"no end message within {timeout:g} s for: {'; '.join(missing)}")
        diagnosis.append(f"{CAUSE_SYNC}: {', '.join(x.split(' (')[0] for x in missing)} never ended")
    else:
        rungs[RUNG_SYNC] = Rung(RUNG_SYNC, OK, ev, summary=(
            f"positions ({ev.get('positions')}), account download ({ev.get('account_values')} values), "
            "executions: all ended"))


def _account_kind_rung(attempt: Attempt, port: int, rungs: dict[str, Rung], diagnosis: list[str]) -> None:
    accounts = attempt.result.accounts if attempt.result is not None else []
    live = [a for a in accounts if not a.upper().startswith(PAPER_PREFIXES)]
    ev = {"accounts": redact_accounts(accounts), "paper": redact_accounts([a for a in accounts if a not in live]),
          "live": redact_accounts(live), "port": port, "live_port": LIVE_PORTS.get(port)}
    if live:
        rungs[RUNG_ACCOUNT_KIND] = Rung(
            RUNG_ACCOUNT_KIND, WARN, ev, FIX_LIVE,
            f"LIVE ACCOUNT: {', '.join(redact_accounts(live))} is not a paper account (DU/DF)"
            + (f"; port {port} is the {LIVE_PORTS[port]} port" if port in LIVE_PORTS else ""))
        diagnosis.append(f"{CAUSE_LIVE}: {', '.join(redact_accounts(live))}")
    elif port in LIVE_PORTS:
        rungs[RUNG_ACCOUNT_KIND] = Rung(RUNG_ACCOUNT_KIND, WARN, ev, FIX_LIVE_PORT,
                                        f"paper accounts, but port {port} is the {LIVE_PORTS[port]} port")
        diagnosis.append(f"{CAUSE_LIVE_PORT}: {port} ({LIVE_PORTS[port]})")
    else:
        rungs[RUNG_ACCOUNT_KIND] = Rung(RUNG_ACCOUNT_KIND, OK, ev,
                                        summary=f"paper: {', '.join(redact_accounts(accounts))}")


def _close_wait_rung(survey: SocketSurvey, port: int, threshold: int, rungs: dict[str, Rung], diagnosis: list[str],
                     *, healthy_handshake: bool) -> None:
    if not survey.visible:
        rungs[RUNG_CLOSE_WAIT] = Rung(RUNG_CLOSE_WAIT, SKIP, {"visible": False, "reason": survey.reason},
                                      FIX_REMOTE_SOCKETS if "not this host" in survey.reason else "",
                                      f"not counted: {survey.reason}")
        return
    count = survey.count
    ev: dict[str, Any] = {
        "visible": True, "close_wait": count, "threshold": threshold, "transient_closed": survey.transient,
        "sockets": [_row(r) for r in survey.close_wait[:MAX_SOCKET_ROWS]],
        "owners": sorted({_owner(r) for r in survey.close_wait}),
        "listener": [_row(r) for r in survey.listeners], "established": survey.established,
        "conclusive": survey.conclusive_zero if count == 0 else True,
    }
    owners = f" owned by {', '.join(ev['owners'])}" if count else ""
    if count >= threshold:
        rungs[RUNG_CLOSE_WAIT] = Rung(RUNG_CLOSE_WAIT, FAIL, ev, FIX_ZOMBIE,
                                      f"{count} CLOSE_WAIT sockets on port {port}{owners} (threshold {threshold})")
        if healthy_handshake:
            rungs[RUNG_CLOSE_WAIT].remediation = FIX_CHURN  # the API answers: churn is the candidate
            diagnosis.append(f"{CAUSE_ZOMBIES_PRESENT}: {count}")
    elif count:
        rungs[RUNG_CLOSE_WAIT] = Rung(RUNG_CLOSE_WAIT, WARN, ev, FIX_CHURN.split(", then")[0],
                                      f"{count} CLOSE_WAIT socket(s) on port {port}{owners} (below {threshold})")
        if healthy_handshake:
            diagnosis.append(f"{CAUSE_ZOMBIES_PRESENT}: {count}")
    else:
        where = ""
        if not survey.conclusive_zero:
            where = (f" (but {survey.forwarder} listens in front of the Gateway: its own sockets are not visible "
                     "here)" if survey.forwarder else " (no listener visible on this port here: inconclusive)")
        rungs[RUNG_CLOSE_WAIT] = Rung(RUNG_CLOSE_WAIT, OK, ev, "",
                                      f"0 CLOSE_WAIT sockets on port {port}{where}")


def silent_family(survey: SocketSurvey, threshold: int) -> list[str]:
    """Table keys (causes.py) of what remains possible when TCP is accepted
    and nothing answers: probe asks this so it agrees with doctor."""
    rows = [cause_for_text(title) for title in _silent_family(survey, threshold)]
    return [row.key for row in rows if row is not None]


def _silent_family(survey: SocketSurvey, threshold: int) -> list[str]:
    """What remains possible when TCP is accepted and nothing answers."""
    if survey.visible and survey.count >= threshold:
        return [CAUSE_ZOMBIE, CAUSE_NOT_LOGGED_IN, CAUSE_RED]
    if survey.conclusive_zero:
        return [CAUSE_NOT_LOGGED_IN, CAUSE_RED]
    return [CAUSE_NOT_LOGGED_IN, CAUSE_RED, CAUSE_ZOMBIE]  # few or unknown CLOSE_WAIT: not excluded


# ---------------------------------------------------------------- small helpers


def _skip_after(rungs: dict[str, Rung], reason: str, *names: str) -> None:
    for name in names:
        rungs.setdefault(name, Rung(name, SKIP, {}, "", f"not reached: {reason}"))


def _version_ev(attempt: Attempt) -> dict[str, Any]:
    r = attempt.result
    assert r is not None
    ev: dict[str, Any] = {"server_version": r.server_version, "connection_time": r.connection_time,
                          "client_range": f"v{r.client.min_version}..{r.client.max_version}",
                          "version_reply_ms": attempt.phases_ms.get(PHASE_SERVER_VERSION)}
    if r.server_version is not None and r.client.max_version and r.server_version < r.client.max_version:
        # The negotiated version is min(build's max, client's max); this
        # client offers more, so the number is the build's own maximum.
        ev["build_max_server_version"] = r.server_version
        ev["note"] = (f"v{r.server_version} is the Gateway build's maximum (this client offers up to "
                      f"v{r.client.max_version})")
    return ev


def _version_summary(attempt: Attempt) -> str:
    r = attempt.result
    assert r is not None
    text = f"server version {r.server_version} in {attempt.phases_ms.get(PHASE_SERVER_VERSION)} ms"
    if r.server_version is not None and r.client.max_version and r.server_version < r.client.max_version:
        text += " (the build's maximum)"
    return text


def _next_id_ev(attempt: Attempt) -> dict[str, Any]:
    r = attempt.result
    assert r is not None
    return {"client_id": attempt.client_id, "next_valid_id": r.next_valid_id,
            "next_valid_id_ms": attempt.phases_ms.get(PHASE_NEXT_VALID_ID), "gateway_codes": attempt.codes,
            "gateway_messages": [f"{msg.code} {redact_text(msg.message, r.accounts)}" for msg in r.messages]}


def _next_id_summary(attempt: Attempt) -> str:
    r = attempt.result
    assert r is not None
    return f"nextValidId {r.next_valid_id} in {attempt.phases_ms.get(PHASE_NEXT_VALID_ID)} ms"


def _accounts_ev(attempt: Attempt) -> dict[str, Any]:
    r = attempt.result
    assert r is not None
    return {"accounts": redact_accounts(r.accounts), "count": len(r.accounts),
            "managed_accounts_ms": attempt.phases_ms.get(PHASE_MANAGED_ACCOUNTS)}


def _accounts_text(attempt: Attempt) -> str:
    accounts = attempt.result.accounts if attempt.result is not None else []
    return ", ".join(redact_accounts(accounts)) or "(none)"


def _outcome_text(attempt: Attempt, timeout: float) -> str:
    return {"ok": "answered", "silent": f"no version reply within {timeout:g} s either",
            "refused": "connection refused", "closed": "closed before the version reply",
            "id_in_use": "error 326 too", "no_next_id": f"no nextValidId within {timeout:g} s",
            "no_accounts": "no managedAccounts"}.get(attempt.kind, attempt.cause or attempt.kind)


def _row(row: SocketRow) -> dict[str, Any]:
    return {"local": row.local, "remote": row.remote, "status": row.status, "pid": row.pid, "process": row.process}


def _owner(row: SocketRow) -> str:
    if row.pid is None:
        return "pid not visible"
    return f"{row.process or '?'} (pid {row.pid})"


def _cause_row(text: str) -> dict[str, Any]:
    """The table row a diagnosis line names; a line no row names is a bug
    (tests/scenarios/test_doctor.py checks every line maps to a sourced row)."""
    row = cause_for_text(text)
    if row is None:
        return {"text": text, "key": None, "source": "", "fix": "", "meaning": ""}
    return {"text": text, **row.to_dict()}


def _dedupe(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


__all__ = [
    "CAUSE_API_NOT_READY", "CAUSE_DOWN", "CAUSE_FORWARDER", "CAUSE_ID_STUCK", "CAUSE_LIVE", "CAUSE_LOGIN_INCOMPLETE",
    "CAUSE_CONNECTIVITY_LOST", "CAUSE_NON_TWS", "CAUSE_NOT_LOGGED_IN", "CAUSE_RED", "CAUSE_SYNC", "CAUSE_VERSION_RANGE",
    "CAUSE_ZOMBIE", "RUNG_CONNECTIVITY", "CLOSE_WAIT_THRESHOLD", "DoctorResult", "Rung",
    "RUNGS", "VERDICTS", "HostProblem", "diagnose_host", "host_port_in_host", "run_doctor", "silent_family",
    "survey_sockets",
]
