"""What the host's socket table says about a Gateway port.

CLOSE_WAIT sockets on the Gateway's port are the zombie signature: the
client closed, the Gateway never did. Counting them is the only evidence
that separates a saturated Gateway from one that is merely not logged in,
so every caller (scenarios, `ibgw doctor`, the targets' close_wait_count(),
the harness's own tests) counts through this one module: the kernel's table
where this host has one (counts and peers need no process), psutil for the
owning processes, `lsof` where psutil lacks the privilege (macOS). The one stdlib reader of
the kernel's table (proc_net.py) is for where psutil cannot look: inside a
container's namespace (read through exec) and the listener queues psutil
does not report.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..core.errors import HarnessError
from .proc_net import address, parse_proc_net_tcp, read_tables
from .sock_diag import port_rows


@dataclass(frozen=True)
class SocketRow:
    local: str
    remote: str
    status: str
    pid: int | None
    process: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SocketTableUnavailable(HarnessError, RuntimeError):
    """Neither psutil nor lsof could read the socket table."""


def close_wait_sockets(port: int | Collection[int], *, either_end: bool = False) -> list[SocketRow]:
    """Server-side CLOSE_WAIT sockets on `port` (IPv4 and IPv6-mapped);
    either_end: also the sockets whose remote port it is (a client's side)."""
    return [row for row in port_sockets(port, either_end=either_end) if row.status == psutil.CONN_CLOSE_WAIT]


def close_wait_count(port: int | Collection[int], *, either_end: bool = False) -> int:
    """How many CLOSE_WAIT sockets close_wait_sockets() finds."""
    return sum(1 for row in port_states(port, either_end=either_end) if row.status == psutil.CONN_CLOSE_WAIT)


def port_states(port: int | Collection[int], *, either_end: bool = False) -> list[SocketRow]:
    """port_sockets() without the owning processes (pid and process are None), for the callers that
    poll counts and peers: the kernel's netlink dump of the live states (sock_diag.py), else its
    /proc table (proc_net.py), where this host has one. TIME_WAIT rows are not returned.

    Why: psutil maps every socket to its process by walking each process's open files, about four
    times the cost of reading the table itself, and the zombie scenario polls the table every 20 ms
    for each cycle; the /proc text in turn formats every socket of the host, TIME_WAIT included
    (tens of thousands after a benchmark or a suite run), where the netlink dump has the kernel
    filter by port and state. The counts are the same table either way."""
    ports = {port} if isinstance(port, int) else set(port)
    live = port_rows(ports, either_end=either_end)
    if live is None:
        text = read_tables()
        if text is None:
            return port_sockets(port, either_end=either_end)
        live = [row for row in parse_proc_net_tcp(text) if row.state != "TIME_WAIT"]
    rows = []
    for row in live:
        if row.local_port in ports or (either_end and row.remote_port in ports):
            local, remote = address(row.local_hex), address(row.remote_hex)
            rows.append(SocketRow(f"{local[0]}:{local[1]}", f"{remote[0]}:{remote[1]}" if remote[1] else "",
                                  row.state, None, None))  # psutil.CONN_* are the kernel's names
    return rows


def local_close_wait(port: int) -> int | None:
    """close_wait_count() for a target's close_wait_count(): None where this
    host's socket table cannot be read (the count is then unknown, not 0)."""
    try:
        return close_wait_count(port)
    except SocketTableUnavailable:
        return None


def port_sockets(port: int | Collection[int], *, either_end: bool = False) -> list[SocketRow]:
    """Every TCP socket whose local port is `port` (the Gateway's side);
    either_end: or whose remote port it is."""
    ports = {port} if isinstance(port, int) else set(port)
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return [row for p in sorted(ports) for row in _lsof_rows(p, either_end)]
    rows = []
    for conn in conns:
        local = bool(conn.laddr) and conn.laddr.port in ports
        remote = either_end and bool(conn.raddr) and conn.raddr.port in ports
        if not (local or remote):
            continue
        rows.append(SocketRow(_addr(conn.laddr), _addr(conn.raddr) if conn.raddr else "", conn.status,
                              conn.pid, _process_name(conn.pid)))
    return rows


WILDCARDS = frozenset({"0.0.0.0", "::", "*"})


def served_by_listener(rows: list[SocketRow]) -> list[SocketRow]:
    """The rows that belong to the port's server: those whose local address a
    listener on the port covers (all of them for a wildcard listener, or when
    no listener is visible).

    Why: a listener bound to 127.0.0.1:P shares its port number with any
    client socket the kernel bound to another address, e.g. 127.0.0.7:P for
    a connection elsewhere (load generators spread over 127.0.0.x do this
    constantly). Those are not the server's connections, and counting them
    named the client cap as a candidate for a Gateway nobody was connected to."""
    listening = {_host(row.local) for row in rows if row.status == "LISTEN"}
    if not listening or listening & WILDCARDS:
        return rows
    return [row for row in rows if _host(row.local) in listening]


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0].strip("[]")


def _addr(addr: Any) -> str:
    host = addr.ip.removeprefix("::ffff:")
    return f"{host}:{addr.port}"


def _process_name(pid: int | None) -> str | None:
    if pid is None:
        return None
    try:
        return psutil.Process(pid).name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _lsof_rows(port: int, either_end: bool = False) -> list[SocketRow]:
    lsof = shutil.which("lsof")
    if lsof is None:
        raise SocketTableUnavailable("psutil may not read the socket table here and lsof is not installed; "
                                     "hint: run as root, or install lsof")
    out = subprocess.run([lsof, "-nP", f"-iTCP:{port}"], capture_output=True, text=True, timeout=10).stdout
    rows = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 9:
            continue
        name, state = parts[8], parts[9].strip("()") if len(parts) > 9 else ""
        local, _, remote = name.partition("->")
        if not local.endswith(f":{port}") and not (either_end and remote.endswith(f":{port}")):
            continue
        status = {"CLOSE_WAIT": psutil.CONN_CLOSE_WAIT, "ESTABLISHED": psutil.CONN_ESTABLISHED,
                  "LISTEN": psutil.CONN_LISTEN}.get(state, state)
        rows.append(SocketRow(local, remote, status, int(parts[1]), parts[0]))
    return rows
