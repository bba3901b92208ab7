"""Read a network namespace's TCP table from /proc/net/tcp and /proc/net/tcp6.

Why this and not psutil or ss: Gateway images ship no `ss` or `netstat`,
and from the host psutil sees only the host's namespace. Inside a container
`cat` exists everywhere, so the container target runs `cat` through exec
and parses the kernel's own table here (pure functions, testable on text).
The listener queues (rx_queue: a LISTEN socket's accept backlog, another
socket's unread bytes) are not in psutil either, so the wedge detector
(scenarios/listener.py) and `ibgw watch` (watch/sockets.py) read them with
this same parser. Counting this host's CLOSE_WAIT sockets is sockets.py's
job; it reads this host's table through this parser where one exists.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# include/net/tcp_states.h
TCP_STATES = {
    0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT1", 0x05: "FIN_WAIT2",
    0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT", 0x09: "LAST_ACK", 0x0A: "LISTEN", 0x0B: "CLOSING",
}
PROC_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


@dataclass(frozen=True)
class TcpRow:
    local_port: int
    remote_port: int
    state: str
    local_hex: str
    remote_hex: str
    rx_queue: int = 0  # LISTEN: connections not yet accept()ed; others: bytes not yet read (0 when absent)


def _port(address: str) -> int:
    return int(address.rpartition(":")[2], 16)


def parse_proc_net_tcp(text: str) -> list[TcpRow]:
    """Rows of one or more concatenated /proc/net/tcp{,6} files; header lines and junk are skipped."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or not parts[0].rstrip(":").isdigit() or ":" not in parts[1]:
            continue
        try:
            state = TCP_STATES.get(int(parts[3], 16), f"0x{parts[3]}")
            queued = int(parts[4].partition(":")[2], 16) if len(parts) > 4 else 0
            rows.append(TcpRow(_port(parts[1]), _port(parts[2]), state, parts[1], parts[2], queued))
        except ValueError:
            continue
    return rows


def count_state(rows: list[TcpRow], port: int, state: str = "CLOSE_WAIT") -> int:
    """Sockets on the local `port` in `state` (the Gateway's side of a connection)."""
    return sum(1 for row in rows if row.local_port == port and row.state == state)


def read_tables(tables: Iterable[Path] = PROC_TABLES) -> str | None:
    """This namespace's tables as one text; None where none exists (macOS, Windows)."""
    texts = []
    for table in tables:
        try:
            texts.append(table.read_text(encoding="ascii", errors="replace"))
        except OSError:
            continue
    return "\n".join(texts) if texts else None


def address(hex_addr: str) -> tuple[str, int]:
    """A table's `0100007F:0FA2` as ("127.0.0.1", 4002); an IPv4-mapped IPv6
    address as its IPv4 form."""
    host, _, port = hex_addr.partition(":")
    raw = bytes.fromhex(host)
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(words)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), int(port, 16)
