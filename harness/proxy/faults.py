"""The proxy's faults (Toxiproxy's toxics, for the TWS API), parsed in one place.

Text form, shared by the CLI (`--fault`), the control endpoint and the
Python API: ``NAME[=VALUE[,VALUE]][/DIRECTION]``. DIRECTION is where the
bytes flow: ``up`` (client -> Gateway), ``down`` (Gateway -> client) or
``both``; each fault has a default. Examples: ``latency=200,50``,
``slice=1,2/down``, ``coalesce=100``, ``limit-data=4096/down``, ``half-close``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.errors import HarnessError
from ..mock.sources import NO_GATEWAY_CLAIM
from ..protocol.frame import DOWN, UP

BOTH = "both"
DIRECTIONS = (UP, DOWN, BOTH)


class ProxyFaultError(HarnessError, ValueError):
    """An unknown proxy fault or a bad value; the message lists what is valid."""


@dataclass(frozen=True)
class ProxyFaultSpec:
    name: str
    value_help: str  # "" for a flag
    default_direction: str
    description: str
    values: tuple[float, ...]  # defaults for each value (len = how many it takes); () for a flag
    minimum: tuple[float, ...] = ()
    required: int = 0  # how many values must be given
    # What the fault rests on (harness/mock/sources.py): most are network
    # conditions and claim nothing about the Gateway itself.
    source: str = f"{NO_GATEWAY_CLAIM} (a network condition)"

    @property
    def usage(self) -> str:
        if self.value_help.startswith("["):  # an optional value
            text = f"{self.name}[={self.value_help.strip('[]')}]"
        else:
            text = f"{self.name}={self.value_help}" if self.value_help else self.name
        return f"{text}[/{'|'.join(DIRECTIONS)}]"


SPECS: dict[str, ProxyFaultSpec] = {s.name: s for s in (
    ProxyFaultSpec("latency", "MS[,JITTER]", BOTH, "every chunk delayed by MS (+- JITTER) milliseconds; order kept",
                   (0.0, 0.0), (0.0, 0.0), 1),
    ProxyFaultSpec("blackhole", "", BOTH, "accept and go silent: bytes are read and dropped, never forwarded; "
                   "new connections get no upstream (a dead forwarder, a firewall dropping packets)", (),
                   source="UnusualAlpha/ib-gateway-docker#52, gnzsnz/ib-gateway-docker#77 (socat forwarder "
                          "timeouts to the Gateway)"),
    ProxyFaultSpec("reset", "[MS]", BOTH, "reset (RST) every connection when set, and each new one MS after "
                   "accept (0: at once)", (0.0,), (0.0,)),
    ProxyFaultSpec("half-close", "", DOWN, "send FIN one way and keep the other open: /down (default) the client "
                   "sees EOF while the Gateway keeps its side; /up the Gateway sees EOF while the client's socket "
                   "stays up", ()),
    ProxyFaultSpec("bandwidth", "KBPS", BOTH, "at most KBPS kilobytes per second per connection and direction",
                   (0.0,), (0.001,), 1),
    ProxyFaultSpec("limit-data", "BYTES", BOTH, "close the connection once BYTES have been forwarded "
                   "(counted in the fault's direction)", (0.0,), (0.0,), 1),
    ProxyFaultSpec("slice", "BYTES[,DELAY_MS]", DOWN, "split each chunk into writes of BYTES with DELAY_MS "
                   "between them (TCP segments arrive in pieces)", (1.0, 1.0), (1.0, 0.0), 1),
    ProxyFaultSpec("coalesce", "MS", DOWN, "hold writes for MS milliseconds and send what arrived as one write "
                   "(a forwarder that buffers): ibapi drops bytes that arrive with the version reply",
                   (0.0,), (0.0,), 1,
                   source=f"{NO_GATEWAY_CLAIM} (a forwarder's buffering; the drop is the official ibapi client's "
                          "own reading of the version reply)"),
)}


@dataclass(frozen=True)
class ProxyFault:
    name: str
    values: tuple[float, ...]
    direction: str
    text: str

    def applies(self, direction: str) -> bool:
        return self.direction in (BOTH, direction)


def valid_faults_text() -> str:
    return ", ".join(spec.usage for spec in SPECS.values())


def parse_fault(text: str) -> ProxyFault:
    """`NAME[=V[,V]][/DIR]` -> ProxyFault; ProxyFaultError names what is valid."""
    body, slash, direction = text.strip().partition("/")
    name, eq, raw = body.partition("=")
    spec = SPECS.get(name)
    if spec is None:
        raise ProxyFaultError(f"unknown proxy fault {name!r}; valid: {valid_faults_text()}")
    if slash and direction not in DIRECTIONS:
        raise ProxyFaultError(f"proxy fault {name}: direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    parts = [p.strip() for p in raw.split(",")] if eq and raw.strip() else []
    if not spec.values and parts:
        raise ProxyFaultError(f"proxy fault {name} takes no value (got {raw!r})")
    if len(parts) > len(spec.values) or len(parts) < spec.required:
        raise ProxyFaultError(f"proxy fault {name} needs {spec.usage}")
    values = list(spec.values)
    for i, part in enumerate(parts):
        try:
            values[i] = float(part)
        except ValueError:
            raise ProxyFaultError(f"proxy fault {name}: {part!r} is not a number") from None
        if values[i] < spec.minimum[i]:
            raise ProxyFaultError(f"proxy fault {name}: {values[i]:g} is below the minimum {spec.minimum[i]:g}")
    return ProxyFault(name, tuple(values), direction or spec.default_direction, text.strip())


class ProxyFaultSet:
    """The faults active on one proxy, by name (setting a name again replaces it)."""

    def __init__(self) -> None:
        self.active: dict[str, ProxyFault] = {}

    def set(self, text: str) -> ProxyFault:
        fault = parse_fault(text)
        self.active[fault.name] = fault
        return fault

    def clear(self, name: str | None = None) -> None:
        if name is None:
            self.active.clear()
            return
        if name not in SPECS:
            raise ProxyFaultError(f"unknown proxy fault {name!r}; valid: {valid_faults_text()}")
        self.active.pop(name, None)

    def get(self, name: str, direction: str | None = None) -> ProxyFault | None:
        fault = self.active.get(name)
        if fault is None or (direction is not None and not fault.applies(direction)):
            return None
        return fault

    def __contains__(self, name: object) -> bool:
        return name in self.active

    def describe(self) -> list[str]:
        return [f.text for f in self.active.values()]

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.describe(),
                "valid": {s.name: {"usage": s.usage, "description": s.description,
                                   "source": s.source} for s in SPECS.values()}}
