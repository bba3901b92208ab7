"""The registry of fault classes (`register`, `SPECS`) and the set of faults
active on one mock Gateway (`FaultSet`), which is the one object the
gateway, the session and the replayer ask.

Parsing lives here so the CLI, the control endpoint and the tests reject a
bad name or value with the same message. Standard library only.
"""

from __future__ import annotations

import random
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .base import Fault, FaultError, FaultSpec

if TYPE_CHECKING:
    from ..gateway import MockGateway
    from ..session import Session

SPECS: dict[str, FaultSpec] = {}
FAULT_TYPES: dict[str, type[Fault]] = {}
F = TypeVar("F", bound=type[Fault])


def register(cls: F) -> F:
    """Class decorator: make a fault known by its spec's name. Registration
    order is the order faults are asked in (and listed)."""
    name = cls.spec.name
    if name in FAULT_TYPES and FAULT_TYPES[name] is not cls:
        raise RuntimeError(f"fault {name!r} registered twice")
    SPECS[name] = cls.spec
    FAULT_TYPES[name] = cls
    return cls


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
    (timed faults count their offsets from that moment), and the hooks the
    mock asks: each question goes to every active fault in registration
    order."""

    def __init__(self) -> None:
        self.active: dict[str, Any] = {}
        self.raw: dict[str, str] = {}
        self.set_at: dict[str, float] = {}
        self.objects: dict[str, Fault] = {}

    def set(self, text: str) -> str:
        name, value = parse_fault(text)
        fault = FAULT_TYPES[name](value, text.strip())
        self.active[name] = value
        self.raw[name] = fault.raw
        self.set_at[name] = fault.set_at
        self.objects[name] = fault
        return name

    def clear(self, name: str | None = None) -> None:
        if name is None:
            for table in (self.active, self.raw, self.set_at, self.objects):
                table.clear()
            return
        if name not in SPECS:
            raise FaultError(f"unknown fault {name!r}; valid: {valid_faults_text()}")
        for table in (self.active, self.raw, self.set_at, self.objects):
            table.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self.active

    def get(self, name: str, default: Any = None) -> Any:
        return self.active.get(name, default)

    def describe(self) -> list[str]:
        return [self.raw[name] for name in self.active]

    def _ordered(self) -> list[Fault]:
        if not self.objects:  # the common case, asked on every request: no fault set
            return []
        return [self.objects[name] for name in FAULT_TYPES if name in self.objects]

    # ---------------------------------------------------------- the hooks

    def arm(self, name: str, gw: MockGateway) -> Coroutine[Any, Any, None] | None:
        fault = self.objects.get(name)
        return fault.arm(gw) if fault is not None else None

    def refuses_accept(self, gw: MockGateway) -> str | None:
        if not self.objects:  # no fault set: asked on every connection
            return None
        return next((c for f in self._ordered() if (c := f.refuses_accept(gw))), None)

    def blocks_handshake(self, gw: MockGateway) -> str | None:
        if not self.objects:  # no fault set: asked on every connection
            return None
        return next((c for f in self._ordered() if (c := f.blocks_handshake(gw))), None)

    def closes_after_start_api(self, gw: MockGateway) -> str | None:
        if not self.objects:  # no fault set: asked on every connection
            return None
        return next((c for f in self._ordered() if (c := f.closes_after_start_api(gw))), None)

    def max_clients(self, limit: int) -> int:
        for fault in self._ordered():
            limit = fault.max_clients(limit)
        return limit

    def max_server_version(self, version: int) -> int:
        for fault in self._ordered():
            version = fault.max_server_version(version)
        return version

    def on_client_id_released(self, gw: MockGateway, client_id: int) -> None:
        if not self.objects:
            return
        for fault in self._ordered():
            fault.on_client_id_released(gw, client_id)

    def on_api_session_end(self, gw: MockGateway) -> None:
        if not self.objects:
            return
        for fault in self._ordered():
            fault.on_api_session_end(gw)

    def on_client_close(self, session: Session) -> str | None:
        """Every fault hears the close; the first note (a socket left open) wins."""
        if not self.objects:
            return None
        notes = [note for fault in self._ordered() if (note := fault.on_client_close(session))]
        return notes[0] if notes else None

    def startup_delay(self, msg_id: int) -> float:
        return sum(fault.startup_delay(msg_id) for fault in self._ordered())

    def withholds(self, msg_id: int) -> bool:
        return any(fault.withholds(msg_id) for fault in self._ordered())

    def reply_delay(self, rng: random.Random) -> float | None:
        delays = [d for fault in self._ordered() if (d := fault.reply_delay(rng)) is not None]
        return sum(delays) if delays else None

    def farm_notice(self, code: int, text: str) -> tuple[int, str]:
        for fault in self._ordered():
            code, text = fault.farm_notice(code, text)
        return code, text

    def read_only(self) -> bool:
        return any(fault.read_only() for fault in self._ordered())

    def history_refusal(self) -> tuple[int, str] | None:
        return next((r for f in self._ordered() if (r := f.history_refusal()) is not None), None)

    def contract_details_delay(self) -> float:
        return sum(fault.contract_details_delay() for fault in self._ordered())

    def quotes_blocked(self) -> bool:
        return any(fault.quotes_blocked() for fault in self._ordered())
