"""`ibgw record` says what it could not record, as a real subprocess.

An upstream that refuses, or accepts and never answers the handshake, or
no client at all: the file holds no API session a replay could serve, so
the command says why in one line and exits 3 (never "0 frames", exit 0).
A --out in a directory that does not exist is a usage error naming it; the
directory is not created behind the user's back.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.core.net import free_port
from tests.cli.test_cli_bad_paths import HOST, Recorder, usage_error
from tests.support.processes import run_cli

NOTHING = 3


def _closed_port() -> int:
    return free_port(HOST)


@pytest.fixture
def silent_upstream() -> Iterator[int]:
    """Listens (the kernel completes the TCP handshake) and never answers."""
    server = socket.create_server((HOST, 0))
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


def _record_one_client(upstream: int, out: Path) -> tuple[int, str]:
    recorder = Recorder(upstream, out)
    try:
        probe = run_cli("probe", "--port", str(recorder.port), "--timeout", "2")
        assert probe.returncode != 0, probe.stdout  # nothing behind the recorder answers
        return recorder.stop()
    finally:
        recorder.close()


def _one_cause(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("nothing recorded: ")]
    assert len(lines) == 1 and "hint: " in lines[0] and "Traceback" not in err, err
    return lines[0]


def test_refusing_upstream_exits_3_naming_it(tmp_path: Path) -> None:
    port = _closed_port()
    code, err = _record_one_client(port, tmp_path / "r.jsonl")
    assert code == NOTHING, err
    line = _one_cause(err)
    assert f"upstream {HOST}:{port} unreachable" in line, line


def test_silent_upstream_exits_3_saying_it_never_answered(tmp_path: Path, silent_upstream: int) -> None:
    code, err = _record_one_client(silent_upstream, tmp_path / "r.jsonl")
    assert code == NOTHING, err
    assert re.search(r"accepted \d+ connection\(s\) but never answered the API handshake", _one_cause(err))


def test_no_client_exits_3(tmp_path: Path, silent_upstream: int) -> None:
    recorder = Recorder(silent_upstream, tmp_path / "r.jsonl")
    try:
        code, err = recorder.stop()
    finally:
        recorder.close()
    assert code == NOTHING, err
    assert "no client connected" in _one_cause(err)


def test_out_in_a_missing_directory_is_refused_not_created(tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "dir" / "r.jsonl"
    proc = run_cli("record", "--upstream", f"{HOST}:1", "--listen", f"{HOST}:0", "--out", str(out), timeout=20)
    usage_error(proc, "--out", f"the directory {out.parent} does not exist", "mkdir -p")
    assert not (tmp_path / "no").exists()
