"""Read a network namespace's TCP table from /proc/net/tcp and /proc/net/tcp6.

Why this and not psutil or ss: Gateway images ship no `ss` or `netstat`,
and from the host psutil sees only the host's namespace. Inside a container
`cat` exists everywhere, so the container target runs `cat` through exec
and parses the kernel's own table here (pure functions, testable on text).
"""

from __future__ import annotations

from dataclasses import dataclass

# include/net/tcp_states.h
TCP_STATES = {
    0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT1", 0x05: "FIN_WAIT2",
    0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT", 0x09: "LAST_ACK", 0x0A: "LISTEN", 0x0B: "CLOSING",
}


@dataclass(frozen=True)
class TcpRow:
    local_port: int
    remote_port: int
    state: str
    local_hex: str
    remote_hex: str


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
            rows.append(TcpRow(_port(parts[1]), _port(parts[2]), state, parts[1], parts[2]))
        except ValueError:
            continue
    return rows


def count_state(rows: list[TcpRow], port: int, state: str = "CLOSE_WAIT") -> int:
    """Sockets on the local `port` in `state` (the Gateway's side of a connection)."""
    return sum(1 for row in rows if row.local_port == port and row.state == state)


def local_close_wait(port: int) -> int | None:
    """CLOSE_WAIT sockets on a local port of this host, read the way a
    container's are (/proc/net/tcp and tcp6, the same parser); None where
    there is no /proc/net (macOS, Windows)."""
    texts = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, encoding="ascii", errors="replace") as table:
                texts.append(table.read())
        except OSError:
            continue
    if not texts:
        return None
    return count_state(parse_proc_net_tcp("\n".join(texts)), port)
