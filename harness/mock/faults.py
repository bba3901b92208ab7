"""Named faults that reproduce failures real IB Gateway users have reported.

Each fault is a name, an optional value, and a one-line description of the
real-world failure it stands for (shared/reference/gateway-failure-modes.md).
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

from ..protocol.versions import PROTOCOL_MAX, TEXT_PROTOCOL_MIN

END_KINDS = ("positions", "account", "executions", "open-orders", "completed-orders", "account-multi",
             "account-summary")
UNTIL_RESTART = float("inf")


class FaultError(ValueError):
    """An unknown fault name or a bad value; the message lists what is valid."""


@dataclass(frozen=True)
class FaultSpec:
    name: str
    value_help: str  # "" for a flag
    description: str
    parse: Callable[[str | None], Any]

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
    FaultSpec("silent-handshake", "", "TCP accepted, no version reply (not logged in, waiting for 2FA, "
              "API layer stalled)", _flag("silent-handshake")),
    FaultSpec("close-after-accept", "", "accepted, then closed at once (socket forwarder up before the "
              "Gateway; untrusted client address)", _flag("close-after-accept")),
    FaultSpec("delayed-accounts", "MS", "managedAccounts arrives MS after startApi (the 'accounts empty' race)",
              _ms("delayed-accounts")),
    FaultSpec("delayed-next-id", "MS", "nextValidId arrives MS after startApi", _ms("delayed-next-id")),
    FaultSpec("no-next-valid-id", "", "managedAccounts arrives, nextValidId never does",
              _flag("no-next-valid-id")),
    FaultSpec("missing-end", "KIND[,KIND]", f"a start-up request never gets its end message "
              f"({', '.join(END_KINDS)})", _missing_end),
    FaultSpec("client-id-stuck", "S", "after a client leaves, its id stays in use (326 and close) for S "
              "seconds, or until restart without a value", _client_id_stuck),
    FaultSpec("close-wait-leak", "N", "the Gateway never closes its side of a disconnected client: CLOSE_WAIT "
              "sockets pile up; after N of them handshakes stop being answered (default 5)", _close_wait_leak),
    FaultSpec("red-after-disconnect", "", "after a client's explicit disconnect the API layer stops answering "
              "new handshakes until restart", _flag("red-after-disconnect")),
    FaultSpec("connectivity-loss", "AT,FOR", "AT s after set: error 1100 and farms broken (2103/2105); FOR s "
              "later 1102 and farms OK", lambda v: _pair("connectivity-loss", v, None)),
    FaultSpec("restart-at", "T[,DOWN]", "the daily restart, T s after set: every connection dropped, the port "
              "refused for DOWN s (default 5), then back", lambda v: _pair("restart-at", v, 5.0)),
    FaultSpec("max-server-version", "V", "the build negotiates at most V (a retired build when V is below a "
              "client's minimum)", _max_server_version),
    FaultSpec("max-clients", "N", "at most N API clients at once",
              lambda v: int(_number("max-clients", v, integer=True))),
    FaultSpec("latency", "MS[,JITTER]", "every reply delayed by MS (+ up to JITTER) milliseconds", _latency),
    FaultSpec("read-only-api", "", "the Read-Only API setting: order requests get error 321, the connection "
              "stays up", _flag("read-only-api")),
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
              _flag("hmds-pacing")),
    FaultSpec("slow-contract-details", "MS", "contract details (and their end) arrive MS after the request "
              "(a slow sec-def farm; field reports only)", _ms("slow-contract-details")),
    FaultSpec("hmds-farm-broken", "", "start-up says 2105 'HMDS data farm connection is broken' (IbcAlpha/IBC#251) "
              "and history requests get 162 (the 162 text: field reports only)", _flag("hmds-farm-broken")),
    FaultSpec("market-data-farm-broken", "", "start-up says 2103 'Market data farm connection is broken' "
              "(IbcAlpha/IBC#251); snapshots end without prices, as IBKR documents a snapshot that cannot "
              "complete, and streams send nothing", _flag("market-data-farm-broken")),
)})
