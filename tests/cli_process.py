"""`ibgw` as a real subprocess, for the CLI tests: the repository on
PYTHONPATH, a hard cap per run, and `ibgw mock serve` whose port is read
from the "listening on" line it prints (a blocking queue read, not a sleep)."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "harness.cli"]
RUN_TIMEOUT = 60  # a hard cap per CLI run: subprocess.run kills the child after it


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_cli(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


class MockServe:
    """`ibgw mock serve` as a subprocess; its port is read from the
    "listening on" line it prints (a blocking queue read, not a sleep)."""

    def __init__(self, stderr_path: Path, *args: str, port: int = 0) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")  # a file, so a chatty log can never block the child
        self.proc = subprocess.Popen(
            [*CLI, "mock", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.listening_line = ""
        self.port = self._wait_listening(timeout=30)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self, timeout: float) -> int:
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self.close()
                raise AssertionError(f"mock serve did not report listening within {timeout} s") from None
            if line is None:
                code = self.proc.wait(10)
                self.close()
                raise AssertionError(f"mock serve exited {code}: {self.stderr_path.read_text()}")
            match = re.search(r"listening on 127\.0\.0\.1:(\d+) ", line)
            if match:
                self.listening_line = line.rstrip("\n")
                return int(match.group(1))

    @property
    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._reader.join(5)
        self._stderr.close()
