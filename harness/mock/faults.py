"""Named faults that reproduce failures real IB Gateway users have reported.

Each fault is a name, an optional value, a one-line description of the
real-world failure it stands for, and its source: the public report it
reproduces (repo#issue) or, plainly, "field reports only"
(harness/mock/sources.py; a test fails on a fault without one).
Faults combine, are set at start (`ibgw mock serve --fault NAME[=VALUE]`)
and change at run time (MockGateway.set_fault / the control endpoint).
Parsing lives here so the CLI, the control endpoint and the tests reject a
bad name or value with the same message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import HarnessError
from ..protocol.versions import PROTOCOL_MAX, TEXT_PROTOCOL_MIN
from .sources import FIELD_REPORTS_ONLY, NO_GATEWAY_CLAIM

END_KINDS = ("positions", "account", "executions", "open-orders", "completed-orders", "account-multi",
             "account-summary")
UNTIL_RESTART = float("inf")


class FaultError(HarnessError, ValueError):
    """An unknown fault name or a bad value; the message lists what is valid."""


@dataclass(frozen=True)
class FaultSpec:
    name: str
    value_help: str  # "" for a flag
    description: str
    parse: Callable[[str | None], Any]
    # The public report this fault reproduces (repo#issue), or
    # FIELD_REPORTS_ONLY, or NO_GATEWAY_CLAIM for a pure test knob.
    source: str = ""

    @property
    def usage(self) -> str:
        return f"{self.name}={self.value_help}" if self.value_help else self.name


def _flag(name: str) -> Callable[[str | None], Any]:
    def parse(value: str | None) -> bool:
        if value not in (None, "", "1", "true", "on", "yes"):
            raise FaultError(f"fault {name} takes no value (got {value!r})")
        return True

    return parse


def _number(name: str, text: str | None, *, minimum: float = 0, integer: bool = False) -> float:
    if text is None or text == "":
        raise FaultError(f"fault {name} needs a value")
    try:
        number = int(text) if integer else float(text)
    except ValueError:
        raise FaultError(f"fault {name}: {text!r} is not a {'whole ' if integer else ''}number") from None
    if number < minimum:
        raise FaultError(f"fault {name}: {number:g} is below the minimum {minimum:g}")
    return number


def _ms(name: str) -> Callable[[str | None], Any]:
    return lambda value: _number(name, value) / 1000.0  # stored as seconds


def _missing_end(value: str | None) -> frozenset[str]:
    kinds = [k.strip() for k in (value or "").split(",") if k.strip()]
    bad = [k for k in kinds if k not in END_KINDS]
    if not kinds or bad:
        raise FaultError(f"fault missing-end: {', '.join(bad) or 'no kind'} is not one of {', '.join(END_KINDS)}")
    return frozenset(kinds)


def _client_id_stuck(value: str | None) -> float:
    if value in (None, "", "restart", "forever"):
        return UNTIL_RESTART
    return _number("client-id-stuck", value)


def _close_wait_leak(value: str | None) -> int:
    return 5 if value in (None, "") else int(_number("close-wait-leak", value, minimum=1, integer=True))


WEDGE_MODES = ("no-accept", "no-read")


def _api_wedge(value: str | None) -> tuple[str, int]:
    mode, _, after = (value or "").partition(",")
    mode = mode.strip()
    if mode not in WEDGE_MODES:
        raise FaultError(f"fault api-wedge: {mode or 'no mode'!r} is not one of {', '.join(WEDGE_MODES)} "
                         "(e.g. api-wedge=no-read,2)")
    return mode, int(_number("api-wedge", after, integer=True)) if after.strip() else 0


def _nightly_reset(value: str | None) -> tuple[float, float, int, bool]:
    parts = [p.strip() for p in (value or "").split(",")]
    if len(parts) < 2 or len(parts) > 4 or not parts[0] or not parts[1]:
        raise FaultError(f"fault nightly-reset needs AT,FOR[,REPEATS[,lost]] (got {value!r})")
    at, duration = _number("nightly-reset", parts[0]), _number("nightly-reset", parts[1])
    repeats = int(_number("nightly-reset", parts[2], minimum=1, integer=True)) if len(parts) > 2 and parts[2] else 3
    if len(parts) == 4 and parts[3] not in ("lost", "maintained"):
        raise FaultError(f"fault nightly-reset: {parts[3]!r} is not 'lost' or 'maintained'")
    return at, duration, repeats, len(parts) == 4 and parts[3] == "lost"


def _pair(name: str, value: str | None, default_second: float | None) -> tuple[float, float]:
    parts = (value or "").split(",")
    if len(parts) > 2 or not parts[0]:
        raise FaultError(f"fault {name} needs {SPECS[name].usage} (got {value!r})")
    first = _number(name, parts[0])
    if len(parts) == 2:
        return first, _number(name, parts[1])
    if default_second is None:
        raise FaultError(f"fault {name} needs two values, e.g. {name}=10,5")
    return first, default_second


def _latency(value: str | None) -> tuple[float, float]:
    delay, jitter = _pair("latency", value, 0.0)
    return delay / 1000.0, jitter / 1000.0


def _max_server_version(value: str | None) -> int:
    version = int(_number("max-server-version", value, minimum=TEXT_PROTOCOL_MIN, integer=True))
    if version > PROTOCOL_MAX:
        raise FaultError(f"fault max-server-version: {version} is above {PROTOCOL_MAX}, "
                         "the newest server version this mock speaks")
    return version


SPECS: dict[str, FaultSpec] = {s.name: s for s in (
    FaultSpec("silent-handshake", "", "TCP accepted, no version reply: an accept-incoming-connection dialog "
              "waiting (untrusted client address) or a wedged API; not a login or 2FA in progress (the "
              "listener is not up then)", _flag("silent-handshake"),
              source="ib-api-reloaded/ib_async#18, IbcAlpha/IBC#195 (incoming-connection dialog); "
                     "gnzsnz/ib-gateway-docker#336 (wedged API)"),
    FaultSpec("close-after-accept", "", "accepted, then closed at once (a socket forwarder up while the Gateway "
              "logs in or waits for 2FA; an untrusted client address)", _flag("close-after-accept"),
              source="gnzsnz/ib-gateway-docker#119 (socat: 'Connection refused' behind it); "
                     "ib-controller/ib-controller#197 (untrusted address)"),
    FaultSpec("delayed-accounts", "MS", "managedAccounts arrives MS after startApi (the 'accounts empty' race)",
              _ms("delayed-accounts"), source=FIELD_REPORTS_ONLY),
    FaultSpec("delayed-next-id", "MS", "nextValidId arrives MS after startApi", _ms("delayed-next-id"),
              source=FIELD_REPORTS_ONLY),
    FaultSpec("no-next-valid-id", "", "managedAccounts arrives, nextValidId never does",
              _flag("no-next-valid-id"), source="heshiming/ibga#24 (10.41: no nextValidId)"),
    FaultSpec("missing-end", "KIND[,KIND]", f"a start-up request never gets its end message "
              f"({', '.join(END_KINDS)})", _missing_end,
              source="ib-api-reloaded/ib_async#82, erdewit/ib_insync#638 (execDetailsEnd); erdewit/ib_insync#303 "
                     "(accountDownloadEnd); ib-api-reloaded/ib_async#84 (positions); erdewit/ib_insync#224 "
                     "(completed orders)"),
    FaultSpec("client-id-stuck", "S", "after a client leaves, its id stays in use (326 and close) for S "
              "seconds, or until restart without a value", _client_id_stuck,
              source="ib-api-reloaded/ib_async#152, erdewit/ib_insync#106"),
    FaultSpec("closed-after-start-api", "S", "for S seconds after an API client leaves (until restart without a "
              "value) the Gateway closes each new connection right after its startApi, with no error message "
              "(no 326); ib_async reports it as 'clientId N already in use?' whatever the id",
              lambda v: _client_id_stuck(v),
              source="ib-api-reloaded/ib_async#143 (10.30.1: 'Peer closed connection. clientId 123 already in "
                     "use?' with a unique id)"),
    FaultSpec("close-wait-leak", "N", "client churn leaks: the Gateway never closes its side after a client's "
              "clean disconnect while it still answers; after N such sockets handshakes go unanswered "
              "(default 5). Public reports show CLOSE_WAIT as a symptom of a wedged API instead (api-wedge)",
              _close_wait_leak, source=FIELD_REPORTS_ONLY),
    FaultSpec("api-wedge", "MODE[,AFTER]", "the Gateway's API thread wedges once AFTER API sessions have ended "
              "(default 0: at once), until restart. no-accept: the port stays open but nothing is accept()ed, "
              "the listener's accept queue (Recv-Q) grows; no-read: connections are accepted, never read nor "
              "answered. Either way every client times out and CLOSE_WAIT sockets pile up, even after clean "
              "disconnects", _api_wedge,
              source="gnzsnz/ib-gateway-docker#336 (10.41.1d), erdewit/ib_insync#386 (Java-owned CLOSE_WAIT); "
                     "nautechsystems/nautilus_trader#4796 (10.41.1c: no accept(), Recv-Q grows)"),
    FaultSpec("red-after-disconnect", "", "after a client's explicit disconnect the API layer stops answering "
              "new handshakes until restart", _flag("red-after-disconnect"), source=FIELD_REPORTS_ONLY),
    FaultSpec("connectivity-loss", "AT,FOR", "AT s after set: error 1100 and farms broken (2103/2105); FOR s "
              "later 1102 and farms OK", lambda v: _pair("connectivity-loss", v, None),
              source="IbcAlpha/IBC#143, IbcAlpha/IBC#251 (nightly reset: 1100, 2103/2105, 1102)"),
    FaultSpec("nightly-reset", "AT,FOR[,REPEATS[,lost]]", "IB's nightly reset, AT s after set and FOR s long: "
              "error 1100 REPEATS times (default 3), then 2103/2105 farms broken, then 1102 carrying the farm list "
              "(1101 'data lost' with lost), then 2107/2108 farms inactive; the socket stays up",
              _nightly_reset,
              source="IbcAlpha/IBC#143, IbcAlpha/IBC#251 (the reset's messages); QuantConnect/Lean PR #960 (1101)"),
    FaultSpec("restart-at", "T[,DOWN]", "the daily restart, T s after set: every connection dropped, the port "
              "refused for DOWN s (default 5; a real auto-restart takes about 60-90 s), then back",
              lambda v: _pair("restart-at", v, 5.0),
              source="manhinhang/ib-gateway-docker PR #157 (auto-restart refuses the port ~60-90 s)"),
    FaultSpec("max-server-version", "V", "the build negotiates at most V (a retired build when V is below a "
              "client's minimum)", _max_server_version,
              source="waytrade/ib-gateway-docker#9, rolandgg/rust_ib_api#4 (retired builds)"),
    FaultSpec("max-clients", "N", "at most N API clients at once; over it: accept, then close (an assumption)",
              lambda v: int(_number("max-clients", v, integer=True)),
              source=f"{FIELD_REPORTS_ONLY}: IBKR's API docs say up to 32 clients; what the 33rd sees is not "
                     "public"),
    FaultSpec("latency", "MS[,JITTER]", "every reply delayed by MS (+ up to JITTER) milliseconds", _latency,
              source=NO_GATEWAY_CLAIM),
    FaultSpec("read-only-api", "", "the Read-Only API setting: order messages and reqOpenOrders / "
              "reqAllOpenOrders / reqAutoOpenOrders get error 321 '...Read-Only mode.' (reqId -1 for the "
              "requests), reqCompletedOrders gets no answer; the connection stays up", _flag("read-only-api"),
              source="bankroll-py/bankroll#65, erdewit/ib_insync#224"),
)}


def valid_faults_text() -> str:
    return ", ".join(spec.usage for spec in SPECS.values())


def parse_fault(text: str) -> tuple[str, Any]:
    """`NAME[=VALUE]` -> (name, parsed value); FaultError lists valid faults."""
    name, _, raw = text.strip().partition("=")
    spec = SPECS.get(name)
    if spec is None:
        raise FaultError(f"unknown fault {name!r}; valid: {valid_faults_text()}")
    return name, spec.parse(raw if "=" in text else None)


class FaultSet:
    """The faults active on one mock Gateway, with when each was set
    (timed faults count their offsets from that moment)."""

    def __init__(self) -> None:
        self.active: dict[str, Any] = {}
        self.raw: dict[str, str] = {}
        self.set_at: dict[str, float] = {}

    def set(self, text: str) -> str:
        name, value = parse_fault(text)
        self.active[name] = value
        self.raw[name] = text.strip()
        self.set_at[name] = time.monotonic()
        return name

    def clear(self, name: str | None = None) -> None:
        if name is None:
            self.active.clear()
            self.raw.clear()
            self.set_at.clear()
            return
        if name not in SPECS:
            raise FaultError(f"unknown fault {name!r}; valid: {valid_faults_text()}")
        for table in (self.active, self.raw, self.set_at):
            table.pop(name, None)  # type: ignore[attr-defined]

    def __contains__(self, name: object) -> bool:
        return name in self.active

    def get(self, name: str, default: Any = None) -> Any:
        return self.active.get(name, default)

    def describe(self) -> list[str]:
        return [self.raw[name] for name in self.active]


# Faults of a trading app's start-up path (harness/mock/requests_market.py).
SPECS.update({s.name: s for s in (
    FaultSpec("hmds-pacing", "", "every reqHistoricalData gets error 162 'Historical data request pacing "
              "violation' (IBKR's historical-data limits; 162 per the official message codes)",
              _flag("hmds-pacing"),
              source="field reports only: the 162 pacing text per IBKR's historical-data limits page; no capture"),
    FaultSpec("slow-contract-details", "MS", "contract details (and their end) arrive MS after the request "
              "(a slow sec-def farm; field reports only)", _ms("slow-contract-details"), source=FIELD_REPORTS_ONLY),
    FaultSpec("hmds-farm-broken", "", "start-up says 2105 'HMDS data farm connection is broken' (IbcAlpha/IBC#251) "
              "and history requests get 162 (the 162 text: field reports only)", _flag("hmds-farm-broken"),
              source="IbcAlpha/IBC#251 (2105 farm broken); the 162 text: field reports only"),
    FaultSpec("market-data-farm-broken", "", "start-up says 2103 'Market data farm connection is broken' "
              "(IbcAlpha/IBC#251); snapshots end without prices, as IBKR documents a snapshot that cannot "
              "complete, and streams send nothing", _flag("market-data-farm-broken"),
              source="IbcAlpha/IBC#251 (2103 farm broken)"),
)})
