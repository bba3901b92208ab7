"""The one socket-table reader (harness/targets/sockets.py): its cheap form (the kernel's table,
no owning processes) must see exactly what psutil sees, so polling callers may use either."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.core.wait import poll_until
from harness.targets import sockets


def _view(rows: list[sockets.SocketRow]) -> list[tuple[str, str, str]]:
    return sorted((row.local, row.remote, row.status) for row in rows)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="no kernel TCP table on this host (not Linux)")
async def test_the_kernel_table_and_psutil_agree_on_a_close_wait() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        with accepted:
            client.close()  # the server side never closes: CLOSE_WAIT, the zombie signature
            await poll_until(lambda: sockets.close_wait_count(port) == 1, timeout=10.0,
                             what="the accepted socket to reach CLOSE_WAIT")
            fast = sockets.port_states(port, either_end=True)
            full = sockets.port_sockets(port, either_end=True)
    assert _view(fast) == _view(full)
    assert {row.status for row in fast} >= {"LISTEN", "CLOSE_WAIT"}
    assert all(row.pid is None for row in fast)
    assert len(sockets.close_wait_sockets(port)) == 0  # closed by now: both readers see it go
