"""The one interface every client adapter implements.

Why an adapter layer: the failures users hit look different through each
client library (ib_async times out, ibapi hangs, the raw client sees the
bytes). Scenarios speak only to this interface, so the same scenario runs
through every real client and the evidence is comparable across them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..core.errors import HarnessError

# Handshake phases in the order a healthy Gateway completes them. Every
# adapter records the ones its library lets it observe, as seconds since
# the connect attempt started (time.monotonic based).
PHASE_TCP = "tcp_connect"
PHASE_SERVER_VERSION = "server_version"
PHASE_NEXT_VALID_ID = "next_valid_id"
PHASE_MANAGED_ACCOUNTS = "managed_accounts"
PHASE_FIRST_ACCOUNT_VALUE = "first_account_value"
PHASE_API_READY = "api_ready"

PHASES: tuple[str, ...] = (
    PHASE_TCP,
    PHASE_SERVER_VERSION,
    PHASE_NEXT_VALID_ID,
    PHASE_MANAGED_ACCOUNTS,
    PHASE_FIRST_ACCOUNT_VALUE,
    PHASE_API_READY,
)

# What a stall in each phase usually means on a real Gateway; shown by
# `ibgw probe` and attached to evidence so on-call engineers get a cause,
# not a stack trace.
PHASE_MEANING: dict[str, str] = {
    PHASE_TCP: "nothing is listening: the Gateway is down, the API port is wrong, "
    "or 'Enable ActiveX and Socket Clients' is off",
    PHASE_SERVER_VERSION: "TCP accepted but the API layer is not answering: closed at once, a socket "
    "forwarder is up while the Gateway behind it is down or not logged in yet (2FA); silent, an "
    "incoming-connection dialog waits (untrusted client address) or the API is wedged",
    PHASE_NEXT_VALID_ID: "the version handshake completed but the API is not ready: "
    "nextValidId never came (client id in use, API layer stalled after a disconnect)",
    PHASE_MANAGED_ACCOUNTS: "the API answered but managedAccounts is empty or missing: "
    "the login is incomplete or the session is not yet synchronised",
    PHASE_FIRST_ACCOUNT_VALUE: "the API is ready but account data never arrived: "
    "account sync is stalled (a startup request got no end message)",
    PHASE_API_READY: "the client did not finish its own start-up synchronisation",
}


@dataclass
class ClientInfo:
    """Which client library, and exactly which build of it, produced evidence."""

    name: str  # "raw", "ib_async", "ibapi"
    package: str  # distribution name on PyPI, e.g. "ibapi-stable"
    version: str
    min_version: int | None = None  # the API version range it offers, if known
    max_version: int | None = None


@dataclass
class GatewayMessage:
    """An error/warning message (TWS message id 4) the client received."""

    req_id: int
    code: int
    message: str
    at: float | None = None  # seconds since the connect attempt started, when the adapter knows


@dataclass
class ConnectResult:
    """Evidence from one connect attempt, successful or not."""

    client: ClientInfo
    host: str
    port: int
    client_id: int
    readonly: bool
    ok: bool = False
    server_version: int | None = None
    connection_time: str | None = None
    next_valid_id: int | None = None
    accounts: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds since start
    failed_phase: str | None = None
    error: str | None = None
    messages: list[GatewayMessage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Position:
    account: str
    con_id: int
    symbol: str
    sec_type: str
    currency: str
    position: float
    avg_cost: float


@dataclass
class AccountValue:
    account: str
    key: str
    value: str
    currency: str


@dataclass
class AccountSnapshot:
    """What the client holds about the account after start-up sync.

    The *_end fields say whether the Gateway's end-of-download message
    arrived, which is how a missing-end stall is told apart from an empty
    account.
    """

    accounts: list[str] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    account_values: list[AccountValue] = field(default_factory=list)
    portfolio_items: int = 0
    positions_end: bool = False
    account_download_end: list[str] = field(default_factory=list)  # accounts whose download ended
    executions_end: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class HandshakeError(HarnessError):
    """A connect attempt that stopped in a known phase.

    Carries the partial ConnectResult so the evidence of how far it got is
    never lost.
    """

    def __init__(self, phase: str, cause: str, result: ConnectResult | None = None) -> None:
        self.phase = phase
        self.cause = cause
        self.result = result
        self.hint = PHASE_MEANING.get(phase, "")
        super().__init__(f"{phase}: {cause}")


MessageListener = Callable[[GatewayMessage], None]


class AdapterEvents:
    """What a connected adapter announces as it happens: the link closed
    (with a cause), a Gateway system message (an error code), an account
    value. Why: a reconnect loop must hear a dead link or a 1100 when it
    happens, not at its next ping, and must not reach into a library's
    objects or an adapter's private fields to do so.

    An adapter that cannot announce (the official client's reader thread, a
    team's own adapter) keeps a silent one: `closed` never fires and a dead
    link shows up at the next ping, as before. Listeners run on the event
    loop; one that raises never breaks the adapter.
    """

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.close_cause = ""
        self._messages: list[MessageListener] = []
        self._account_values: list[Callable[[], None]] = []

    def reset(self) -> None:
        """A new connection on the same adapter: not closed any more."""
        self.closed = asyncio.Event()
        self.close_cause = ""

    def on_message(self, listener: MessageListener) -> Callable[[], None]:
        """Hear every system message; returns the function that stops it."""
        self._messages.append(listener)
        return lambda: self._messages.remove(listener) if listener in self._messages else None

    def on_account_value(self, listener: Callable[[], None]) -> Callable[[], None]:
        self._account_values.append(listener)
        return lambda: self._account_values.remove(listener) if listener in self._account_values else None

    # -- for adapters --------------------------------------------------------

    def mark_closed(self, cause: str) -> None:
        if not self.closed.is_set():
            self.close_cause = cause or "connection closed"
            self.closed.set()

    def emit_message(self, message: GatewayMessage) -> None:
        for listener in list(self._messages):
            with suppress(Exception):
                listener(message)

    def emit_account_value(self) -> None:
        for listener in list(self._account_values):
            with suppress(Exception):
                listener()


def events_of(adapter: object) -> AdapterEvents:
    """The adapter's events; a silent set for an adapter without them (a
    team's own adapter through the module:factory seam)."""
    events = getattr(adapter, "events", None)
    return events if isinstance(events, AdapterEvents) else AdapterEvents()


@runtime_checkable
class ClientAdapter(Protocol):
    """What a scenario may ask of a client. All methods are async so the
    scenarios run on one event loop whatever the library's threading model."""

    info: ClientInfo

    async def connect(
        self, host: str, port: int, client_id: int, *, timeout: float = 10.0, readonly: bool = True
    ) -> ConnectResult:
        """Connect and wait until the API is ready. Raises HandshakeError."""
        ...

    async def ping(self, timeout: float = 5.0) -> float:
        """One reqCurrentTime round trip; returns the seconds it took."""
        ...

    async def account_snapshot(self, timeout: float = 10.0) -> AccountSnapshot:
        """Positions, account values and end markers, waited for by events."""
        ...

    async def disconnect(self) -> None:
        """Close the connection; never raises for an already-closed one."""
        ...

    @property
    def events(self) -> AdapterEvents:
        """The link's events (closed, system messages, account values); a
        silent AdapterEvents where the library announces nothing."""
        ...


PhaseListener = Callable[[str, float], None]

# Who wants to hear about phases as they happen (the probe prints them live).
# A clock captures the listener of the context it was created in, so the
# ibapi reader thread reports to the same listener as the event loop.
_phase_listener: ContextVar[PhaseListener | None] = ContextVar("phase_listener", default=None)


@contextmanager
def observe_phases(listener: PhaseListener) -> Iterator[None]:
    """Call listener(phase, seconds) the first time any clock created inside
    this block marks a phase."""
    token = _phase_listener.set(listener)
    try:
        yield
    finally:
        _phase_listener.reset(token)


class PhaseClock:
    """Records the first time each phase is reached, relative to start.

    One clock per connect attempt; the first mark of a phase wins so late
    duplicates (a second nextValidId) do not rewrite history. Thread-safe
    enough for the ibapi reader thread: dict assignment is atomic.
    """

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.phases: dict[str, float] = {}
        self._listener = _phase_listener.get()

    def mark(self, phase: str) -> None:
        if phase in self.phases:
            return
        self.phases[phase] = seconds = round(time.monotonic() - self.t0, 6)
        if self._listener is not None:
            with suppress(Exception):  # reporting must never break a connect
                self._listener(phase, seconds)

    def reached(self, phase: str) -> bool:
        return phase in self.phases
