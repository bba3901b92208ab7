"""The wedge detector: does the process behind a port still accept and read?

Why its own module: public reports of the CLOSE_WAIT pile-up
(gnzsnz/ib-gateway-docker#336 on 10.41.1d, erdewit/ib_insync#386,
nautechsystems/nautilus_trader#4796 on 10.41.1c) show it as the *result*
of the Gateway's API thread wedging, not of client churn: the listener
stops calling accept() (its accept queue, the LISTEN socket's Recv-Q,
grows: 37 in #4796) or accepts and never reads (the client's bytes sit in
the Recv-Q of the accepted socket until the client gives up, which leaves
CLOSE_WAIT). Both are visible in the kernel's socket table without asking
the Gateway anything, so doctor and the zombie scenario judge the same way
against a real Gateway and the mock.

Source: /proc/net/tcp and /proc/net/tcp6 (Linux; for a LISTEN socket the
rx_queue column is the accept queue length, for any other the unread
bytes). A queue that a healthy server drains in milliseconds only counts
when it is still there after a short settle.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..targets.proc_net import PROC_TABLES, address, parse_proc_net_tcp, read_tables
from ..targets.sock_diag import port_rows

STATES = ("ESTABLISHED", "CLOSE_WAIT", "LISTEN")
SETTLE_S = 0.3  # a reading, accepting server drains its queues far faster than this


@dataclass(frozen=True)
class QueuedSocket:
    local: str
    remote: str
    state: str
    queued: int  # LISTEN: connections not yet accept()ed; others: bytes not yet read


@dataclass
class PortQueues:
    """What the kernel holds for `port` that its server has not taken."""

    port: int
    visible: bool
    reason: str = ""  # why the table could not be read
    listening: bool = False
    accept_backlog: int = 0  # connections completed by the kernel, never accept()ed
    unread: list[QueuedSocket] = field(default_factory=list)  # accepted sockets holding unread client bytes

    @property
    def wedged(self) -> bool:
        """The server neither accepts nor reads: its API thread is stuck."""
        return self.visible and (self.accept_backlog > 0 or bool(self.unread))

    @property
    def signature(self) -> str:
        """One line saying what was seen (empty when nothing is stuck)."""
        parts = []
        if self.accept_backlog:
            parts.append(f"the listener on port {self.port} has {self.accept_backlog} connection(s) waiting that "
                         "were never accept()ed (Recv-Q)")
        if self.unread:
            close_wait = sum(1 for s in self.unread if s.state == "CLOSE_WAIT")
            parts.append(f"{len(self.unread)} socket(s) on port {self.port} hold client bytes never read "
                         f"({sum(s.queued for s in self.unread)} bytes; {close_wait} of them in CLOSE_WAIT)")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["wedged"] = self.wedged
        data["unread"] = [asdict(s) for s in self.unread[:10]]
        data["unread_count"] = len(self.unread)
        return data


def _read(port: int) -> PortQueues | None:
    """One reading of the tables; None when no table exists here. The kernel's netlink dump first
    (port-filtered: /proc formats every TIME_WAIT socket of the host, see targets/sock_diag.py)."""
    rows = port_rows({port})
    if rows is None:
        text = read_tables(PROC_TABLES)
        if text is None:
            return None
        rows = parse_proc_net_tcp(text)
    view = PortQueues(port, True)
    for row in rows:
        if row.state not in STATES or row.local_port != port:
            continue
        if row.state == "LISTEN":
            view.listening = True
            view.accept_backlog += row.rx_queue
        elif row.rx_queue > 0:
            local_ip, local_port = address(row.local_hex)
            remote_ip, remote_port = address(row.remote_hex)
            view.unread.append(QueuedSocket(f"{local_ip}:{local_port}", f"{remote_ip}:{remote_port}", row.state,
                                            row.rx_queue))
    return view


def port_queues(port: int, settle: float = SETTLE_S) -> PortQueues:
    """The port's stuck queues: read twice, `settle` seconds apart, keeping
    only what stayed (a healthy Gateway takes its backlog and bytes in
    milliseconds; a wedged one never does). Blocking: call it in a thread
    from async code."""
    first = _read(port)
    if first is None:
        return PortQueues(port, False, "no /proc/net/tcp here (the listener's queues are readable on Linux only)")
    if not first.accept_backlog and not first.unread:
        return first
    time.sleep(settle)  # kernel queue state has no event to wait for
    second = _read(port) or PortQueues(port, True)
    stayed = {(s.local, s.remote) for s in first.unread}
    second.unread = [s for s in second.unread if (s.local, s.remote) in stayed]
    second.accept_backlog = min(first.accept_backlog, second.accept_backlog)
    return second


__all__ = ["PortQueues", "QueuedSocket", "port_queues"]
