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
            # Both ends settled (the client's side leaves FIN_WAIT1 when its FIN is acked), so the
            # two reads below, taken one after the other, see the same states.
            await poll_until(lambda: sockets.close_wait_count(port) == 1 and "FIN_WAIT2" in {
                row.status for row in sockets.port_states(port, either_end=True)}, timeout=10.0,
                what="the accepted socket to reach CLOSE_WAIT and the client's FIN_WAIT2")
            fast = sockets.port_states(port, either_end=True)
            full = sockets.port_sockets(port, either_end=True)
    assert _view(fast) == _view(full)
    assert {row.status for row in fast} >= {"LISTEN", "CLOSE_WAIT"}
    assert all(row.pid is None for row in fast)
    assert len(sockets.close_wait_sockets(port)) == 0  # closed by now: both readers see it go


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="no kernel TCP table on this host (not Linux)")
async def test_the_netlink_dump_matches_the_proc_table_without_time_wait() -> None:
    """sock_diag.py (what port_states reads first) must give the /proc table's rows, queues included,
    for IPv4 and IPv6, leaving out only TIME_WAIT."""
    from harness.targets import sock_diag
    from harness.targets.proc_net import parse_proc_net_tcp, read_tables

    with socket.socket() as server, socket.socket(socket.AF_INET6) as server6:
        server.bind(("127.0.0.1", 0))
        server6.bind(("::1", 0))
        server.listen()
        server6.listen()
        ports = {server.getsockname()[1], server6.getsockname()[1]}
        with socket.create_connection(server.getsockname()) as unread, \
                socket.create_connection(server6.getsockname()[:2]) as peer6:
            accepted, _ = server.accept()
            accepted6, _ = server6.accept()
            with accepted, accepted6:
                unread.sendall(b"never read")  # an ESTABLISHED row with rx_queue > 0
                peer6.close()  # a CLOSE_WAIT row on the IPv6 side
                await poll_until(lambda: sockets.close_wait_count(server6.getsockname()[1]) == 1, timeout=10.0,
                                 what="the IPv6 accepted socket to reach CLOSE_WAIT")
                await poll_until(lambda: any(r.rx_queue for r in sock_diag.port_rows(ports) or []), timeout=10.0,
                                 what="the unread bytes to show in the accepted socket's queue")
                fast = sock_diag.port_rows(ports)
                text = read_tables()
    assert fast is not None and text is not None
    table = [row for row in parse_proc_net_tcp(text) if row.local_port in ports and row.state != "TIME_WAIT"]
    assert sorted(fast, key=repr) == sorted(table, key=repr)
    assert {row.state for row in fast} >= {"LISTEN", "ESTABLISHED", "CLOSE_WAIT"}


def test_a_client_socket_sharing_the_listeners_port_number_is_not_the_servers() -> None:
    """A listener on 127.0.0.1:P, a client socket the kernel (here: we) bound to
    127.0.0.2:P for a connection elsewhere, and one real connection to the
    listener: only the listener's own rows count as the server's."""
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_server(("127.0.0.1", 0)) as elsewhere:
        port = server.getsockname()[1]
        with socket.socket() as stranger, socket.create_connection(("127.0.0.1", port)) as client:
            stranger.bind(("127.0.0.2", port))
            stranger.connect(elsewhere.getsockname())
            accepted, _ = server.accept()
            other, _ = elsewhere.accept()
            with accepted, other:
                rows = sockets.port_sockets(port)
                assert any(r.local == f"127.0.0.2:{port}" for r in rows), rows  # the table does show it
                served = sockets.served_by_listener(rows)
                assert {r.status for r in served} == {"LISTEN", "ESTABLISHED"}, served
                assert [r.local for r in served if r.status == "ESTABLISHED"] == [f"127.0.0.1:{port}"]
                assert client.getsockname()[1] != port


def test_a_wildcard_listener_keeps_every_row() -> None:
    rows = [sockets.SocketRow("0.0.0.0:4002", "", "LISTEN", None, None),
            sockets.SocketRow("127.0.0.9:4002", "127.0.0.1:50000", "ESTABLISHED", None, None)]
    assert sockets.served_by_listener(rows) == rows
    assert sockets.served_by_listener(rows[1:]) == rows[1:]  # no listener visible: nothing to judge by
