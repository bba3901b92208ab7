"""What a fault is: its spec (name, value, description, source), the value
parsers, and the hooks the mock asks (a `Fault` answers each with a no-op
default, so a fault overrides only the hooks it changes).

Why hooks: the session, the gateway and a recording's replayer ask the one
set of active faults (`FaultSet`, harness/mock/faults/registry.py) questions
such as "is this handshake blocked?" or "how late does managedAccounts go
out?", instead of checking fault names. A new fault is then one class in one
module (plus its test): nothing else in the mock changes.
Standard library only.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ...core.errors import HarnessError
from ...protocol.versions import PROTOCOL_MAX, TEXT_PROTOCOL_MIN

if TYPE_CHECKING:
    from ..gateway import MockGateway
    from ..session import Session

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


class Fault:
    """One active fault: its parsed value and the hooks it overrides.

    Every hook has a neutral default; `FaultSet` asks each active fault in
    registration order. Hooks that change the Gateway's own condition (a red
    API, leaked sockets, stuck ids) do so on the gateway, which clears that
    condition on restart; the fault decides when.
    """

    spec: ClassVar[FaultSpec]

    def __init__(self, value: Any, raw: str) -> None:
        self.value = value
        self.raw = raw
        self.set_at = time.monotonic()  # timed faults count their offsets from here

    # ---------------------------------------------------------- gateway

    def arm(self, gw: MockGateway) -> Coroutine[Any, Any, None] | None:
        """Called when the fault is set on a listening gateway (or the
        gateway starts): a coroutine to run as the fault's timer, or None."""
        return None

    def refuses_accept(self, gw: MockGateway) -> str | None:
        """A close cause when a new connection is closed right after accept."""
        return None

    def blocks_handshake(self, gw: MockGateway) -> str | None:
        """Why a new handshake goes unanswered right now, or None."""
        return None

    def closes_after_start_api(self, gw: MockGateway) -> str | None:
        """A close cause when a startApi gets a bare close (no error)."""
        return None

    def max_clients(self, limit: int) -> int:
        return limit

    def max_server_version(self, version: int) -> int:
        return version

    def on_client_id_released(self, gw: MockGateway, client_id: int) -> None:
        """A client's id was freed (its connection ended)."""

    def on_api_session_end(self, gw: MockGateway) -> None:
        """A session that started the API ended on its own."""

    def on_client_close(self, session: Session) -> str | None:
        """The connection ends: a note (appended to the close cause) when the
        fault keeps the Gateway's side of the socket open, else None."""
        return None

    # ---------------------------------------------------------- replies

    def startup_delay(self, msg_id: int) -> float:
        """Seconds a start-up message (managedAccounts, nextValidId; an
        incoming message id) goes out late."""
        return 0.0

    def withholds(self, msg_id: int) -> bool:
        """True when a reply of this incoming message id is never sent."""
        return False

    def reply_delay(self, rng: random.Random) -> float | None:
        """Seconds before a request is answered; None: no delay at all."""
        return None

    def farm_notice(self, code: int, text: str) -> tuple[int, str]:
        """A start-up farm notice as this fault changes it."""
        return code, text

    def read_only(self) -> bool:
        """True when the API is read-only (orders and order queries refused)."""
        return False

    def history_refusal(self) -> tuple[int, str] | None:
        """The error every historical-data request gets, or None."""
        return None

    def contract_details_delay(self) -> float:
        return 0.0

    def quotes_blocked(self) -> bool:
        """True when market data requests get no prices."""
        return False


# ------------------------------------------------------------ value parsers


def flag(name: str) -> Callable[[str | None], Any]:
    def parse(value: str | None) -> bool:
        if value not in (None, "", "1", "true", "on", "yes"):
            raise FaultError(f"fault {name} takes no value (got {value!r})")
        return True

    return parse


def number(name: str, text: str | None, *, minimum: float = 0, integer: bool = False) -> float:
    if text is None or text == "":
        raise FaultError(f"fault {name} needs a value")
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise FaultError(f"fault {name}: {text!r} is not a {'whole ' if integer else ''}number") from None
    if value < minimum:
        raise FaultError(f"fault {name}: {value:g} is below the minimum {minimum:g}")
    return value


def ms(name: str) -> Callable[[str | None], Any]:
    return lambda value: number(name, value) / 1000.0  # stored as seconds


def until_restart(name: str) -> Callable[[str | None], float]:
    """S seconds, or until restart without a value."""
    def parse(value: str | None) -> float:
        if value in (None, "", "restart", "forever"):
            return UNTIL_RESTART
        return number(name, value)

    return parse


def pair(name: str, usage: str, value: str | None, default_second: float | None) -> tuple[float, float]:
    parts = (value or "").split(",")
    if len(parts) > 2 or not parts[0]:
        raise FaultError(f"fault {name} needs {usage} (got {value!r})")
    first = number(name, parts[0])
    if len(parts) == 2:
        return first, number(name, parts[1])
    if default_second is None:
        raise FaultError(f"fault {name} needs two values, e.g. {name}=10,5")
    return first, default_second


def server_version(name: str) -> Callable[[str | None], int]:
    def parse(value: str | None) -> int:
        version = int(number(name, value, minimum=TEXT_PROTOCOL_MIN, integer=True))
        if version > PROTOCOL_MAX:
            raise FaultError(f"fault {name}: {version} is above {PROTOCOL_MAX}, "
                             "the newest server version this mock speaks")
        return version

    return parse
