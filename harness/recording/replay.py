"""Replay: the mock answers each client request with the recorded responses
to the matching request.

Why a responder inside the mock's Session rather than a server of its own:
the handshake (version negotiation, client-id registry, the connection
cap) and every fault stay the mock's shared code, so a recording combines
with faults (latency, missing-end, connectivity-loss, ...) and a replay
connection is recorded, transcribed and judged like any other. The Session
hands this responder the start-up (after startApi) and every request
(harness/mock/session.py: `responder`); order messages never reach it.

How a recording becomes a script, per recorded connection:
- each client request opens an *exchange*; a Gateway frame belongs to the
  exchange whose request id it carries, else to the newest request of its
  reply family (positions -> reqPositions, nextValidId -> reqIds or
  startApi, ...), else an error that is not a system notice belongs to the
  newest request; everything else (farm status 2104/2106/2158, 1100/1102,
  ...) is *unsolicited* and keeps its offset from startApi;
- a response keeps its delay after its request; both are divided by the
  replay speed (1 = recorded timing, 2 = twice as fast, 0 = no delays).

Matching a live request: same message type, the fields that matter equal
(ESSENTIAL: the account of reqAccountUpdates, the tags of
reqAccountSummary, ...), other non-volatile fields as a score; request
ids, client ids, versions and times never matter. The connection the
client was paired with (same version range, in recorded order) is asked
first, then every other recorded connection. Request ids, the client id in
executions and timestamps (currentTime, currentTimeInMillis, error times,
the connection time) are remapped to the live ones.

A request no recorded connection saw is a *divergence*: logged, kept on
the ConnectionRecord (`divergences`) and on the Replayer, and answered with
error 321 naming the divergence plus the empty end marker of its family
(positionEnd, accountDownloadEnd, ...) so the client fails or completes
instead of hanging. Requests that have no reply on a real Gateway (cancels,
unsubscribe, reqMarketDataType) are reported but not answered.

What the recording cannot serve is said at once, by name, never left to
the client's own "API not ready" timeout (FORMAT.md, "Replay semantics"): a
session at the negotiated version whose start-up converts, a client range
the recorded versions reach, answers to a read-write client's order queries
(a read-only recording has none), and any order.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any

from ..protocol import messages as m
from ..protocol.errors import ProtocolError
from ..protocol.framing import Field
from ..protocol.messages import In, Message, Out
from .codec import (
    UP,
    FrameLine,
    NotReplayable,
    downgrade,
    encode,
    get_value,
    named,
    set_value,
)
from .format import Connection, Recording

if TYPE_CHECKING:
    from ..mock.session import Session

log = logging.getLogger("harness.replay")

# Reply families: which requests a Gateway message answers.
FAMILY: dict[int, tuple[int, ...]] = {
    In.NEXT_VALID_ID: (Out.REQ_IDS, Out.START_API),
    In.MANAGED_ACCTS: (Out.REQ_MANAGED_ACCTS, Out.START_API),
    In.CURRENT_TIME: (Out.REQ_CURRENT_TIME,),
    In.CURRENT_TIME_IN_MILLIS: (Out.REQ_CURRENT_TIME_IN_MILLIS,),
    In.POSITION_DATA: (Out.REQ_POSITIONS,), In.POSITION_END: (Out.REQ_POSITIONS,),
    In.ACCT_VALUE: (Out.REQ_ACCT_DATA,), In.PORTFOLIO_VALUE: (Out.REQ_ACCT_DATA,),
    In.ACCT_UPDATE_TIME: (Out.REQ_ACCT_DATA,), In.ACCT_DOWNLOAD_END: (Out.REQ_ACCT_DATA,),
    In.OPEN_ORDER: (Out.REQ_OPEN_ORDERS, Out.REQ_ALL_OPEN_ORDERS, Out.REQ_AUTO_OPEN_ORDERS),
    In.ORDER_STATUS: (Out.REQ_OPEN_ORDERS, Out.REQ_ALL_OPEN_ORDERS, Out.REQ_AUTO_OPEN_ORDERS),
    In.OPEN_ORDER_END: (Out.REQ_OPEN_ORDERS, Out.REQ_ALL_OPEN_ORDERS, Out.REQ_AUTO_OPEN_ORDERS),
    In.COMPLETED_ORDER: (Out.REQ_COMPLETED_ORDERS,), In.COMPLETED_ORDERS_END: (Out.REQ_COMPLETED_ORDERS,),
    In.EXECUTION_DATA: (Out.REQ_EXECUTIONS,), In.EXECUTION_DATA_END: (Out.REQ_EXECUTIONS,),
    In.COMMISSION_REPORT: (Out.REQ_EXECUTIONS,),
    In.ACCOUNT_SUMMARY: (Out.REQ_ACCOUNT_SUMMARY,), In.ACCOUNT_SUMMARY_END: (Out.REQ_ACCOUNT_SUMMARY,),
    In.ACCOUNT_UPDATE_MULTI: (Out.REQ_ACCOUNT_UPDATES_MULTI,),
    In.ACCOUNT_UPDATE_MULTI_END: (Out.REQ_ACCOUNT_UPDATES_MULTI,),
}
# Fields that never decide a match.
VOLATILE = frozenset({"version", "req_id", "client_id", "capabilities", "time", "extra"})
# Fields that must be equal for a match.
ESSENTIAL: dict[int, tuple[str, ...]] = {
    Out.REQ_ACCT_DATA: ("subscribe", "account"),
    Out.REQ_ACCOUNT_SUMMARY: ("group", "tags"),
    Out.REQ_ACCOUNT_UPDATES_MULTI: ("account", "model_code"),
    Out.REQ_EXECUTIONS: ("account", "symbol", "sec_type", "side"),
    Out.REQ_COMPLETED_ORDERS: ("api_only",),
    Out.REQ_AUTO_OPEN_ORDERS: ("auto_bind",),
}
# Requests with no reply on a real Gateway: a divergence, but nothing to answer.
NO_REPLY = frozenset({Out.CANCEL_POSITIONS, Out.CANCEL_ACCOUNT_SUMMARY, Out.CANCEL_ACCOUNT_UPDATES_MULTI,
                      Out.REQ_MARKET_DATA_TYPE, Out.REQ_AUTO_OPEN_ORDERS})
DIVERGENCE_CODE = 321
# How the error a replay sends a connection it cannot serve begins: the
# scenarios read it back (scenarios/common.py) so a failure names the replay's
# reason, not only what the client made of the close.
REFUSAL_PREFIX = "replay cannot serve this connection: "
# Requests only a read-write client sends at connect (ib_async without
# readonly=True: wire-protocol of ib.py connectAsync): a recording whose
# sessions never made them was made read-only and holds no answer to give.
# (reqAutoOpenOrders is not one: ib_async sends it for client id 0 either way.)
ORDER_QUERIES = frozenset({Out.REQ_OPEN_ORDERS, Out.REQ_ALL_OPEN_ORDERS, Out.REQ_COMPLETED_ORDERS})
# An order against a replay: rejected with the code a Gateway rejects orders
# with, so the client's bookkeeping closes the order (as for the mock's own).
ORDER_REJECTED_CODE = 201
# The text a Read-Only API Gateway refuses order queries with (bankroll-py/bankroll#65),
# and the queries it refuses so (reqCompletedOrders it leaves unanswered: erdewit/ib_insync#224).
READ_ONLY_TEXT = "Read-Only mode"
READ_ONLY_REFUSED = frozenset({Out.REQ_OPEN_ORDERS, Out.REQ_ALL_OPEN_ORDERS})
# A frame due within this many seconds goes now: a timer per sub-millisecond
# gap would make the replay slower than the recording it keeps the timing of.
# Due times are absolute (request arrival + recorded delay), so the slack
# never accumulates: every frame leaves at most 1 ms early.
TIMER_SLACK = 0.001
# Timestamp fields remapped to "now": name -> units per second.
TIMESTAMPS: dict[str, int] = {"time": 1, "time_ms": 1000, "error_time": 1000}


def is_notice(code: str) -> bool:
    """System notices (connectivity 1100-1102, 1300; farm status and other
    warnings 2100-2199): unsolicited, never an answer to a request."""
    try:
        value = int(code)
    except ValueError:
        return False
    return 1100 <= value <= 1102 or value == 1300 or 2100 <= value <= 2199


def _norm(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return {"True": "1", "true": "1", "False": "0", "false": "0"}.get(text, text)


def match_fields(msg: Message) -> dict[str, str]:
    """The fields of a request that may decide a match (named, normalised)."""
    if msg.fields:
        return {k: _norm(v) for k, v in msg.fields.items() if k not in VOLATILE}
    return {f"#{i}": v for i, v in enumerate(msg.raw)}  # no layout known: positions


# ---------------------------------------------------------------- scripts


@dataclass
class Exchange:
    """A recorded request and the frames that answered it."""

    order: int
    request: FrameLine
    fields: dict[str, str]
    req_id: str | None
    responses: list[tuple[float, FrameLine]] = field(default_factory=list)  # (delay after the request, frame)
    used: int = 0


@dataclass
class Script:
    """One recorded connection, ready to replay."""

    conn: Connection
    start: Exchange | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    unsolicited: list[tuple[float, FrameLine]] = field(default_factory=list)  # (offset after startApi, frame)
    gateway_close: float | None = None  # offset after startApi at which the Gateway closed
    assigned: int = 0

    @property
    def server_version(self) -> int:
        return self.conn.server_version or 0


# What closes a request's answer: its end marker, or the single replies it
# waits for (startApi waits for both nextValidId and managedAccounts).
CLOSES: dict[int, frozenset[int]] = {
    Out.START_API: frozenset({In.NEXT_VALID_ID, In.MANAGED_ACCTS}),
    Out.REQ_IDS: frozenset({In.NEXT_VALID_ID}), Out.REQ_MANAGED_ACCTS: frozenset({In.MANAGED_ACCTS}),
    Out.REQ_CURRENT_TIME: frozenset({In.CURRENT_TIME}),
    Out.REQ_CURRENT_TIME_IN_MILLIS: frozenset({In.CURRENT_TIME_IN_MILLIS}),
    Out.REQ_POSITIONS: frozenset({In.POSITION_END}), Out.REQ_ACCT_DATA: frozenset({In.ACCT_DOWNLOAD_END}),
    Out.REQ_OPEN_ORDERS: frozenset({In.OPEN_ORDER_END}), Out.REQ_ALL_OPEN_ORDERS: frozenset({In.OPEN_ORDER_END}),
    Out.REQ_COMPLETED_ORDERS: frozenset({In.COMPLETED_ORDERS_END}),
    Out.REQ_EXECUTIONS: frozenset({In.EXECUTION_DATA_END}),
    Out.REQ_ACCOUNT_SUMMARY: frozenset({In.ACCOUNT_SUMMARY_END}),
    Out.REQ_ACCOUNT_UPDATES_MULTI: frozenset({In.ACCOUNT_UPDATE_MULTI_END}),
}


def _answers(msg: Message) -> bool:
    """False for requests a Gateway never answers (cancels, an unsubscribe)."""
    if msg.msg_id in NO_REPLY:
        return False
    return not (msg.msg_id == Out.REQ_ACCT_DATA and _norm(msg.fields.get("subscribe", "")) != "1")


def build_script(conn: Connection) -> Script:
    """Attribute every Gateway frame (see the module docstring). Within a
    family the Gateway answers in request order, so a frame goes to the
    oldest request whose answer is still open; once all are closed, to the
    newest (a subscription's later updates belong to it). The proxy times
    each direction on its own, so a client's next request can be recorded
    before the tail of the previous answer: order, not time, decides."""
    script = Script(conn)
    version = script.server_version
    by_req_id: dict[str, Exchange] = {}
    answering: list[Exchange] = []  # requests that get answers, in order
    waiting: dict[int, set[int]] = {}  # id(exchange) -> reply ids still to come
    last: Exchange | None = None
    start_t = 0.0
    for frame in conn.messages():
        if frame.direction == UP:
            try:
                msg = named(frame, version)
            except ProtocolError:
                continue
            req_id = get_value(frame, "req_id", version)
            exchange = Exchange(len(script.exchanges) + 1, frame, match_fields(msg), req_id)
            if frame.msg_id == Out.START_API and script.start is None:
                script.start, start_t = exchange, frame.t
            else:
                script.exchanges.append(exchange)
            if req_id not in (None, "", "-1"):
                by_req_id[req_id] = exchange
            if _answers(msg):
                answering.append(exchange)
                waiting[id(exchange)] = set(CLOSES.get(frame.msg_id or 0, ()))
                last = exchange
            continue
        owner: Exchange | None = None
        req_id = get_value(frame, "req_id", version) if frame.msg_id != In.NEXT_VALID_ID else None
        if req_id not in (None, "", "-1") and req_id in by_req_id:
            owner = by_req_id[req_id]
        elif frame.msg_id in FAMILY:
            family = [e for e in answering if e.request.msg_id in FAMILY[frame.msg_id]]
            still_open = [e for e in family if waiting[id(e)]]
            owner = still_open[0] if still_open else (family[-1] if family else None)
        elif frame.msg_id == In.ERR_MSG and last is not None and script.start is not None:
            code = get_value(frame, "code", version) or ""
            owner = None if is_notice(code) else last
            if owner is not None and READ_ONLY_TEXT in (get_value(frame, "message", version) or ""):
                # A Read-Only API refusal (reqId -1) answers the oldest order query still open, not
                # the newest request: ib_async sends reqCompletedOrders before the refusal arrives.
                refused = [e for e in answering if e.request.msg_id in READ_ONLY_REFUSED and waiting[id(e)]]
                if refused:
                    owner = refused[0]
                    waiting[id(owner)].clear()  # refused: no end message follows
        if owner is not None:
            owner.responses.append((max(0.0, frame.t - owner.request.t), frame))
            waiting.get(id(owner), set()).discard(frame.msg_id or 0)
        else:
            script.unsolicited.append((max(0.0, frame.t - start_t), frame))
    if conn.closed_by == "gateway" and conn.closed_t is not None and script.start is not None:
        script.gateway_close = max(0.0, conn.closed_t - start_t)
    return script


# ---------------------------------------------------------------- the responder


@dataclass
class Divergence:
    conn_id: int
    t: float  # seconds since the connection was accepted
    kind: str  # unmatched-request | server-version | client-range | no-connection | not-replayable | read-only
    detail: str
    request: str | None = None
    fields: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"conn_id": self.conn_id, "t": self.t, "kind": self.kind, "request": self.request,
                "fields": self.fields, "detail": self.detail}


class Replayer:
    """The responder factory a MockGateway takes (`responder=`): one
    ReplaySession per connection, all drawing on one recording."""

    def __init__(self, recording: Recording, *, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError(f"replay speed {speed:g} is negative; use 1 for recorded timing, 0 for no delays")
        self.recording = recording
        self.speed = speed
        self.scripts = [build_script(c) for c in recording.connections]
        self.divergences: list[Divergence] = []
        self.replayed_requests = 0
        self.reused_requests = 0

    def __call__(self, session: Session) -> ReplaySession:
        return ReplaySession(self, session)

    def scale(self, seconds: float) -> float:
        return 0.0 if self.speed == 0 else seconds / self.speed

    def candidates(self, msg_id: int) -> list[tuple[Script, Exchange]]:
        return [(s, e) for s in self.scripts for e in s.exchanges if e.request.msg_id == msg_id]

    @property
    def versions(self) -> list[int]:
        """The server versions of the recorded sessions that reached startApi."""
        return sorted({s.server_version for s in self.scripts if s.start is not None})

    def versions_text(self) -> str:
        """'176, 187', or what stands for none, for the texts that name them."""
        return ", ".join(map(str, self.versions)) or "no session reached startApi"

    @property
    def read_only(self) -> bool:
        """True when no recorded session asked for orders (open, completed,
        auto-bound): the recording was made by read-only clients, or behind
        `ibgw record`'s guard only, and holds no answer a read-write client needs."""
        return not any(self.candidates(msg_id) for msg_id in ORDER_QUERIES)

    @property
    def read_only_api(self) -> bool:
        """True when the recorded Gateway refused an order query as a
        Read-Only API Gateway does (error 321 '... Read-Only mode.')."""
        return any(f.msg_id == In.ERR_MSG and READ_ONLY_TEXT in "|".join(map(str, f.fields))
                   for s in self.scripts for e in s.exchanges if e.request.msg_id in ORDER_QUERIES
                   for _, f in e.responses)

    def describe(self) -> str:
        """One line for the user: what this recording can serve, and what not."""
        ranges = sorted({tuple(s.conn.client_range) for s in self.scripts
                         if s.start is not None and s.conn.client_range})
        sessions = sum(s.start is not None for s in self.scripts)
        text = (f"replaying {sessions} recorded API session(s) at server version {self.versions_text()}"
                + (f" (client ranges {', '.join(f'v{lo}..{hi}' for lo, hi in ranges)})" if ranges else ""))
        if self.read_only:
            text += ("; recorded read-only: no answers to order queries (a read-write client is refused by name), "
                     "and orders are never replayed")
        elif self.read_only_api:
            text += "; the recorded Gateway had the Read-Only API setting: its refusals are replayed"
        return text

    def pick_script(self, client_range: tuple[int, int] | None, server_version: int | None = None) -> Script | None:
        """The recorded session to replay: one at the negotiated server
        version first (no conversion needed), then one the same client made
        (same version range), least used, oldest."""
        started = [s for s in self.scripts if s.start is not None]
        wanted = list(client_range) if client_range else None
        ranked = sorted(started, key=lambda s: (server_version is not None and s.server_version != server_version,
                                                s.conn.client_range != wanted, s.assigned, s.conn.conn))
        if not ranked:
            return None
        ranked[0].assigned += 1
        return ranked[0]


class ReplaySession:
    """Answers one connection from the recording (see the module docstring)."""

    def __init__(self, replayer: Replayer, session: Session) -> None:
        self.replayer = replayer
        self.session = session
        self.script: Script | None = None
        self.task = asyncio.current_task()  # the connection's task: a recorded Gateway close cancels it
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self.refused = False  # _cannot_serve ran: nothing more is sent on this connection

    # ------------------------------------------------------------ session hooks

    def out_of_range(self, low: int, high: int, replied: int) -> None:
        """The client's version range starts above every recorded session:
        the mock replies with its version and the client closes (each client
        names the version itself); the user is told which, here."""
        self._diverge("server-version", f"the recording holds no session at server version {low} or above for "
                      f"this client (it offers v{low}..{high}; recorded: {self.replayer.versions_text()}); hint: "
                      "record with this client (`ibgw record`)")

    def start(self) -> None:
        """startApi arrived and the client id is ours: replay the recorded start-up."""
        record = self.session.record
        script = self.replayer.pick_script(record.client_range, self.session.server_version)
        self.script = script
        if script is None:
            self._cannot_serve("no-connection", "the recording holds no connection that reached startApi")
            return
        unconvertible = self._unconvertible_startup(script)
        if unconvertible:
            self._cannot_serve("server-version", f"the recording holds no session at server version "
                               f"{self.session.server_version} for this client (recorded: "
                               f"{self.replayer.versions_text()}; {unconvertible}); hint: record with this client "
                               "(`ibgw record`), or replay with a client that negotiates a recorded version")
            return
        if script.conn.client_range and record.client_range and list(record.client_range) != script.conn.client_range:
            self._diverge("client-range", f"client offers v{record.client_range[0]}..{record.client_range[1]}, the "
                          f"recorded client offered v{script.conn.client_range[0]}..{script.conn.client_range[1]}")
        if self.session.server_version != script.server_version:
            self._diverge("server-version", f"negotiated {self.session.server_version}, recorded "
                          f"{script.server_version}; replayed frames are converted where the layouts are known")
        now = self._now()
        assert script.start is not None
        self._schedule(now, script.start, None, startup=True)
        for offset, frame in script.unsolicited:
            self._at(now + self.replayer.scale(offset), functools.partial(self._send, frame, None))
        if script.gateway_close is not None:
            self._at(now + self.replayer.scale(script.gateway_close) + 1e-6, self._close)

    def _unconvertible_startup(self, script: Script) -> str:
        """Why the recorded start-up (nextValidId, managedAccounts) cannot be
        sent at the negotiated version, or '': checked before anything is
        sent, so the client gets one named refusal instead of half a start-up."""
        live = self.session.server_version
        if script.start is None or script.server_version == live:
            return ""
        for _, recorded in script.start.responses:
            if recorded.msg_id not in (In.NEXT_VALID_ID, In.MANAGED_ACCTS):
                continue
            frame = copy.deepcopy(recorded)
            downgrade(frame, script.server_version, live)
            try:
                encode(frame, live)
            except (NotReplayable, ProtocolError, KeyError) as exc:
                return f"its {frame.name} cannot be converted: {exc}"
        return ""

    def order_refusal(self, request: Message, order_id: int) -> tuple[int, str]:
        """An order against a replay (the Session asks before refusing it):
        no recording answers an order, since `ibgw record`'s guard never lets
        one reach the Gateway, so the refusal says that by name."""
        detail = (f"the recording was made read-only: no order reaches a recorded Gateway (`ibgw record` keeps "
                  f"orders from it), so {request.name} id {order_id} has no recorded answer")
        self._diverge("read-only", detail, request.name)
        return ORDER_REJECTED_CODE, f"Order rejected - reason:replay cannot serve this order: {detail}"

    def answer(self, request: Message, fields: list[str]) -> None:
        """A request after startApi (never an order message: the Session refuses those)."""
        if self.refused:
            return
        exchange = self._match(request)
        if exchange is None and request.msg_id in ORDER_QUERIES and self.replayer.read_only:
            self._cannot_serve("read-only", f"the recording was made read-only: no recorded session asked for "
                               f"orders, and this client sends {request.name} (a read-write client does at connect); "
                               "hint: connect read-only (ib_async: readonly=True), or record with this client "
                               "connecting read-write", request.name, fields)
            return
        if exchange is None:
            self._diverge("unmatched-request", "the recording never saw this request", request.name, fields)
            self._fallback(request)
            return
        if request.msg_id in ORDER_QUERIES and not exchange.responses and self.replayer.read_only_api:
            log.warning("replay conn %d: %s was never answered by the recorded Gateway (Read-Only API setting): "
                        "the client waits for it as it did", self.session.record.conn_id, request.name)
        self.replayer.replayed_requests += 1
        if exchange.used:
            self.replayer.reused_requests += 1
        exchange.used += 1
        live_id = request.fields.get("req_id")
        self._schedule(self._now(), exchange, None if live_id in (None, "") else str(live_id))

    def _match(self, request: Message) -> Exchange | None:
        live = match_fields(request)
        essential = ESSENTIAL.get(request.msg_id, ())
        best: tuple[Any, ...] | None = None
        chosen: Exchange | None = None
        for script, exchange in self.replayer.candidates(request.msg_id):
            if any(live.get(k, "") != exchange.fields.get(k, "") for k in essential):
                continue
            score = sum(live.get(k) == v for k, v in exchange.fields.items())
            rank = (exchange.used, script is not self.script, -score, script.conn.conn, exchange.order)
            if best is None or rank < best:
                best, chosen = rank, exchange
        return chosen

    # ------------------------------------------------------------ sending

    def _schedule(self, now: float, exchange: Exchange, live_req_id: str | None, startup: bool = False) -> None:
        faults = self.session.gw.faults
        for delay, frame in exchange.responses:
            extra = faults.startup_delay(frame.msg_id) if startup and frame.msg_id is not None else 0.0  # delayed-accounts, delayed-next-id
            due = now + self.replayer.scale(delay) + extra
            self._at(due, functools.partial(self._send, frame, exchange, live_req_id))

    def _send(self, recorded: FrameLine, exchange: Exchange | None, live_req_id: str | None = None) -> None:
        assert self.script is not None
        if self.refused:
            return
        faults = self.session.gw.faults
        if recorded.msg_id is not None and faults.withholds(recorded.msg_id):  # no-next-valid-id, missing-end
            return
        frame = copy.deepcopy(recorded)
        recorded_version, live_version = self.script.server_version, self.session.server_version
        downgrade(frame, recorded_version, live_version)
        recorded_id = exchange.req_id if exchange is not None else None
        if (recorded_id not in (None, "", "-1") and live_req_id is not None
                and get_value(frame, "req_id", live_version) == recorded_id):
            set_value(frame, "req_id", live_req_id, live_version)
        self._remap_times(frame, live_version)
        recorded_client, live_client = self.script.conn.client_id, self.session.client_id
        if (frame.msg_id == In.EXECUTION_DATA and recorded_client is not None and live_client is not None
                and get_value(frame, "client_id", live_version) == str(recorded_client)):
            set_value(frame, "client_id", str(live_client), live_version)
        try:
            data, shown, form = encode(frame, live_version)
        except (NotReplayable, ProtocolError, KeyError) as exc:
            if frame.msg_id in (In.NEXT_VALID_ID, In.MANAGED_ACCTS):  # the client would wait for API-ready in vain
                self._cannot_serve("not-replayable", f"the recording holds no session at server version "
                                   f"{live_version} for this client (recorded: {self.replayer.versions_text()}; "
                                   f"its {frame.name} cannot be converted: {exc})", frame.name, frame.fields)
                return
            self._diverge("not-replayable", str(exc), frame.name, frame.fields)
            return
        self.session._send_raw(data, shown, frame.name, form=form)

    def _remap_times(self, frame: FrameLine, version: int) -> None:
        """Recorded epoch timestamps -> the same age relative to now."""
        assert self.script is not None
        shift = time.time() - (self.script.conn.wall + frame.t)
        for name, per_second in TIMESTAMPS.items():
            if name == "time" and frame.msg_id != In.CURRENT_TIME:
                continue  # "time" is a clock value only in currentTime
            value = get_value(frame, name, version)
            if value and value.lstrip("-").isdigit() and int(value) > 0:
                set_value(frame, name, str(int(value) + round(shift * per_second)), version)

    def _fallback(self, request: Message) -> None:
        """Answer a divergence so the client does not hang: error 321 naming
        it, then the empty end marker of the request's family."""
        if request.msg_id in NO_REPLY or (request.msg_id == Out.REQ_ACCT_DATA
                                         and _norm(request.fields.get("subscribe", "")) != "1"):
            return
        req_id = request.int("req_id", -1) if "req_id" in request.fields else -1
        text = (f"Error validating request.-'replay' : cause - the recording has no reply to {request.name} "
                "(replay divergence)")
        fields: list[list[Field]] = [m.error(self.session.server_version, req_id, DIVERGENCE_CODE, text,
                                             error_time_ms=int(time.time() * 1000))]
        end = _end_marker(request, req_id)
        if end is not None:
            fields.append(end)
        for f in fields:
            self._at(self._now(), functools.partial(self.session._send, f, request.msg_id))

    def _cannot_serve(self, kind: str, detail: str, request: str | None = None,
                      fields: list[str] | None = None) -> None:
        """A connection the recording cannot bring to API-ready: say which
        (an error the client shows, the divergence) and close it now, rather
        than leave the client to time out as "API not ready". Once: a
        second cause on the same connection adds nothing the client can use."""
        if self.refused:
            return
        self.refused = True
        self._heap.clear()  # nothing recorded follows the refusal
        self._diverge(kind, detail, request, fields)
        text = REFUSAL_PREFIX + detail
        error = m.error(self.session.server_version, -1, DIVERGENCE_CODE, text, error_time_ms=int(time.time() * 1000))
        now = self._now()
        self._at(now, lambda: self.session._send(error, Out.START_API))
        self._at(now + 1e-3, lambda: self._close(f"replay: {detail}"))

    def _close(self, cause: str = "replay: the recorded Gateway closed the connection here") -> None:
        self.session.drop_cause = cause
        if self.task is not None:
            self.task.cancel()

    # ------------------------------------------------------------ scheduling

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _at(self, due: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), action))
        self._wake.set()
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())
            self.session._later.add(self._runner)  # cancelled with the connection
            self._runner.add_done_callback(self.session._later.discard)

    async def _run(self) -> None:
        """Send each scheduled frame at its time, in (time, order) order."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._heap[0][0] - loop.time()
            if wait > TIMER_SLACK:
                self._wake.clear()
                try:
                    # The recorded gap before the next frame (woken early when something is scheduled).
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    pass
                continue
            _, _, action = heapq.heappop(self._heap)
            action()
            if not self._heap or self._heap[0][0] > loop.time() + TIMER_SLACK:
                await self.session._drain()

    # ------------------------------------------------------------ evidence

    def _diverge(self, kind: str, detail: str, request: str | None = None, fields: list[str] | None = None) -> None:
        record = self.session.record
        divergence = Divergence(record.conn_id, round(time.monotonic() - record.accepted_at, 6), kind, detail,
                                request, list(fields or []))
        self.replayer.divergences.append(divergence)
        getattr(record, "divergences", []).append(divergence.to_dict())
        log.warning("replay conn %d: divergence (%s): %s%s", record.conn_id, kind, detail,
                    f": {request} {'|'.join(fields or [])}" if request else "")


def _end_marker(request: Message, req_id: int) -> list[Field] | None:
    mid = request.msg_id
    if mid == Out.REQ_POSITIONS:
        return m.position_end()
    if mid in (Out.REQ_OPEN_ORDERS, Out.REQ_ALL_OPEN_ORDERS):
        return m.open_order_end()
    if mid == Out.REQ_COMPLETED_ORDERS:
        return m.completed_orders_end()
    if mid == Out.REQ_ACCT_DATA:
        return m.account_download_end(str(request.fields.get("account", "")))
    if mid == Out.REQ_EXECUTIONS:
        return m.exec_details_end(req_id)
    if mid == Out.REQ_ACCOUNT_SUMMARY:
        return m.account_summary_end(req_id)
    if mid == Out.REQ_ACCOUNT_UPDATES_MULTI:
        return m.account_update_multi_end(req_id)
    return None





# ---------------------------------------------------------------- a mock that replays


def replay_profile(recording: Recording) -> Any:
    """The Gateway profile a replay presents: the recorded build, the
    recorded negotiated version as its maximum (a client negotiates what the
    recorded one did, or less), the recorded connection-time zone."""
    from ..mock.profiles import GatewayProfile

    header = recording.header
    version = header.server_version or max(header.server_versions or [178])
    zone_name, iana = _recorded_zone(recording)
    return GatewayProfile("replay", header.gateway_build or "unknown (replay)", version, time_zone=zone_name,
                          iana_zone=iana)


def _recorded_zone(recording: Recording) -> tuple[str, str]:
    """The zone text of the recorded connection time, and an IANA zone that
    gives the same local time (the name itself, else a fixed Etc/GMT offset)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    for conn in recording.connections:
        text = conn.connection_time or ""
        parts = text.split(" ", 2)
        if len(parts) < 3:
            continue
        zone = parts[2]
        try:
            ZoneInfo(zone)
            return zone, zone
        except (ZoneInfoNotFoundError, ValueError):
            pass
        try:
            local = datetime.strptime(f"{parts[0]} {parts[1]}", "%Y%m%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            continue
        hours = round((local.timestamp() - conn.wall) / 3600)
        if -12 <= hours <= 14:
            return zone, "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
    return "UTC", "UTC"


def replay_gateway(recording: Recording, *, speed: float = 1.0, host: str = "127.0.0.1", port: int = 0,
                   **options: Any) -> tuple[Any, Replayer]:
    """A MockGateway that answers from the recording, and its Replayer
    (divergences). Other MockGateway options (faults, max_clients, ...) pass on."""
    from ..mock import MockGateway

    replayer = Replayer(recording, speed=speed)
    gateway = MockGateway(host, port, profile=replay_profile(recording), responder=replayer, **options)
    return gateway, replayer

__all__ = ["REFUSAL_PREFIX", "Divergence", "ReplaySession", "Replayer", "Script", "build_script", "is_notice", "match_fields",
           "replay_gateway", "replay_profile"]
