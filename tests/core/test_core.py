"""harness/core: the leaf layer's helpers do what the layers above rely on.

Why: every layer now takes its poll loop, atomic write, free port, error
base and constants from here; a regression would show up everywhere at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from harness.core import constants
from harness.core.errors import HarnessError
from harness.core.files import atomic_write, atomic_write_text, temp_sibling
from harness.core.net import free_port
from harness.core.signals import on_stop_signals
from harness.core.wait import WaitTimeout, poll_until, port_open, wait_port, wait_port_sync, wait_until


async def test_poll_until_returns_the_first_truthy_value_of_a_sync_or_async_check() -> None:
    calls = []

    def check() -> int:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    assert await poll_until(check, timeout=30, interval=0.001) == 3

    async def ready() -> str:
        return "yes"

    assert await poll_until(ready, timeout=1) == "yes"


async def test_poll_until_is_bounded_and_says_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        await poll_until(lambda: False, timeout=0.2, what="the mock's outage to end", hint="look at the mock log")
    assert time.monotonic() - started < 10  # bounded (generous: a loaded machine)
    assert "the mock's outage to end" in str(info.value)
    assert info.value.hint == "look at the mock log"
    assert isinstance(info.value, HarnessError) and isinstance(info.value, TimeoutError)
    # A caller whose timeout is itself a finding gets the last value instead.
    assert await poll_until(lambda: 0, timeout=0.05, raise_on_timeout=False) == 0


def test_wait_until_checks_at_least_once_even_with_no_time() -> None:
    assert wait_until(lambda: "now", timeout=0) == "now"
    with pytest.raises(WaitTimeout):
        wait_until(lambda: None, timeout=0.05)


async def test_wait_port_sees_a_listener_and_times_out_on_a_free_port() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await wait_port("127.0.0.1", port, timeout=30)
        await asyncio.to_thread(wait_port_sync, "127.0.0.1", port, timeout=30)
    finally:
        server.close()
        await server.wait_closed()
    closed = free_port()
    assert not port_open("127.0.0.1", closed)
    with pytest.raises(WaitTimeout) as info:
        await wait_port("127.0.0.1", closed, timeout=0.3)
    assert f"127.0.0.1:{closed}" in str(info.value) and info.value.hint


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "evidence.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"

    def fails(fh: object) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fails)
    assert target.read_text() == "new"  # the old file, never half a new one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evidence.json"]
    assert temp_sibling(target).name == f".evidence.json.{os.getpid()}.tmp"  # the sweep's pattern (runstate)


def test_harness_error_carries_a_hint() -> None:
    err = HarnessError("cannot listen on 127.0.0.1:4002", hint="choose another port")
    assert err.hint == "choose another port"
    assert err.with_hint() == "cannot listen on 127.0.0.1:4002\nHint: choose another port"
    assert HarnessError("no hint").with_hint() == "no hint"


def test_existing_errors_share_the_base_and_keep_their_builtin_type() -> None:
    from harness.clients.base import HandshakeError
    from harness.mock.faults import FaultError
    from harness.protocol.errors import ProtocolError
    from harness.targets.base import TargetSpecError

    assert issubclass(FaultError, ValueError) and issubclass(TargetSpecError, ValueError)
    for cls in (HandshakeError, FaultError, ProtocolError, TargetSpecError):
        assert issubclass(cls, HarnessError), cls
    assert ProtocolError("bad frame", "a TWS API peer?").hint == "a TWS API peer?"


def test_constants_are_defined_once() -> None:
    """The old names are the core objects, not copies that could drift."""
    from harness.clients import ibapi_client
    from harness.live.policy import DEFAULT_ID_RANGE
    from harness.mock.healthcheck import HEALTH_ID_RANGE
    from harness.mock.model import PAPER_PREFIXES
    from harness.protocol import wire_id
    from harness.safety import accounts
    from harness.scenarios import doctor

    assert PAPER_PREFIXES is constants.PAPER_PREFIXES is accounts.PAPER_PREFIXES is doctor.PAPER_PREFIXES
    assert accounts.LIVE_PORTS is constants.LIVE_PORTS is doctor.LIVE_PORTS
    assert DEFAULT_ID_RANGE is HEALTH_ID_RANGE is doctor.PROBE_ID_RANGE is constants.LIVE_CLIENT_ID_RANGE
    assert wire_id.PROTOBUF_MSG_ID is constants.PROTOBUF_MSG_ID == 200  # every wire-id reader goes through wire_id
    assert ibapi_client._CLIENT_ID_IN_USE == constants.CLIENT_ID_IN_USE == 326


def test_moved_modules_have_one_name_only() -> None:
    """The shims under the old names are gone (issue 19: one place per concept); every importer uses core."""
    import importlib

    for old in ("harness.evidence.redact", "harness.evidence.record", "harness.evidence.categories",
                "harness.pytest_live", "harness.scenarios.readiness"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(old)


async def test_on_stop_signals_turns_sigterm_into_a_callback() -> None:
    loop = asyncio.get_running_loop()
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    got: asyncio.Future[int] = loop.create_future()
    on_stop_signals(loop, lambda signum: got.done() or got.set_result(signum))
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(got, 30) == signal.SIGTERM
    finally:
        for signum, handler in before.items():  # the run's own handlers (the plugin's SIGTERM) come back
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)
