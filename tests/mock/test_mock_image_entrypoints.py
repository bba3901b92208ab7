"""The images' entry points (mock serve, healthcheck, gnzsnz-shaped stand-in)
run as real processes without site-packages (`python -S`): the proof that
they need the standard library alone, as a bare python3 base image has."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import pytest

from harness.mock.healthcheck import check_api_ready
from harness.targets.container_target import free_port
from tests.support import ROOT
from tests.support.processes import Spawned

STDLIB_ONLY = [sys.executable, "-S"]  # no site-packages: click, docker, ib_async... are not importable


def _spawn(module: str, env: dict[str, str]) -> Spawned:
    return Spawned([*STDLIB_ONLY, "-m", module], stream="both",
                   env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env})


def _wait_line(proc: Spawned, marker: str) -> str:
    return proc.wait_for(re.escape(marker), timeout=60).string  # or the process exits without it


def _stop(proc: Spawned) -> int:
    return proc.stop()


def test_serve_and_healthcheck_need_only_the_standard_library():
    port = free_port()
    proc = _spawn("harness.mock.serve", {"IBGW_MOCK_PORT": str(port), "IBGW_PROFILE": "10.19"})
    try:
        line = _wait_line(proc, "mock Gateway listening")
        assert f"127.0.0.1:{port}" in line and "profile 10.19" in line
        check = subprocess.run([*STDLIB_ONLY, "-m", "harness.mock.healthcheck", "--port", str(port)], cwd=ROOT,
                               check=False, capture_output=True, text=True, timeout=30, env={"PYTHONPATH": str(ROOT)})
        assert check.returncode == 0 and check.stdout.startswith("ready: server version 176"), check.stdout
    finally:
        assert _stop(proc) == 0


def test_healthcheck_fails_with_the_phase_when_nothing_listens():
    port = free_port()
    check = subprocess.run([*STDLIB_ONLY, "-m", "harness.mock.healthcheck", "--port", str(port), "--timeout", "2"],
                           cwd=ROOT, check=False, capture_output=True, text=True, timeout=30, env={"PYTHONPATH": str(ROOT)})
    assert check.returncode == 1 and check.stdout.startswith("not ready: tcp")


def test_serve_rejects_an_unknown_profile_in_one_line():
    proc = subprocess.run([*STDLIB_ONLY, "-m", "harness.mock.serve", "--profile", "nope", "--port", "0"], cwd=ROOT,
                          check=False, capture_output=True, text=True, timeout=30, env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: unknown Gateway profile 'nope'")
    assert "Traceback" not in proc.stderr


async def test_standin_forwarder_login_delay_and_ibc_restart():
    published, api, command = free_port(), free_port(), free_port()
    proc = _spawn("harness.mock.standin", {
        "TWS_USERID": "u", "TWS_PASSWORD": "p", "IBGW_LOGIN_DELAY": "1", "IBGW_RESTART_DOWN": "0.5",
        "IBGW_STANDIN_PORT": str(published), "IBGW_STANDIN_API_PORT": str(api),
        "IBGW_STANDIN_COMMAND_PORT": str(command)})
    try:
        await asyncio.to_thread(_wait_line, proc, "Login dialog")
        early = await check_api_ready("127.0.0.1", published, timeout=2)
        assert not early.ready and "TCP accepted, then closed" in early.detail  # socat before the Gateway
        await asyncio.to_thread(_wait_line, proc, "Login has completed")
        assert (await check_api_ready("127.0.0.1", published)).ready
        reader, writer = await asyncio.open_connection("127.0.0.1", command)
        writer.write(b"RESTART\n")
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"OK Restart in progress")  # IBC's reply
        writer.close()
        await asyncio.to_thread(_wait_line, proc, "Restart requested")
        await asyncio.to_thread(_wait_line, proc, "Login has completed")
        assert (await check_api_ready("127.0.0.1", published)).ready
    finally:
        assert await asyncio.to_thread(_stop, proc) == 0


@pytest.mark.parametrize("command, reply", [(b"PAUSE\n", b"ERROR"), (b"STOP\n", b"OK")])
async def test_standin_command_server_answers(command, reply):
    published, api, port = free_port(), free_port(), free_port()
    proc = _spawn("harness.mock.standin", {"IBGW_LOGIN_DELAY": "0", "IBGW_STANDIN_PORT": str(published),
                                           "IBGW_STANDIN_API_PORT": str(api), "IBGW_STANDIN_COMMAND_PORT": str(port)})
    try:
        await asyncio.to_thread(_wait_line, proc, "Command server listening")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(command)
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(reply)
        writer.close()
        if command == b"STOP\n":
            assert await asyncio.to_thread(proc.proc.wait, 10) == 0
    finally:
        _stop(proc)
