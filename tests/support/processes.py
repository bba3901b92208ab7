"""The one way the harness's own tests run a child process: `ibgw`, a nested
pytest, a module of the harness, or a tool, bounded by a hard timeout and
with its output collected.

Why one module: seven helpers had grown up for the same job (issue 19),
each with its own environment rules. The rules, once:

* cli_env(): the repository on PYTHONPATH, so `python -m harness...` works
  from any cwd the way an installed `ibgw` does;
* child_env(): no IBGW_/PYTEST_ variable of the outer run leaks into a
  nested pytest (an outer --gateway or an xdist worker id would change it);
* every nested pytest gets its own --evidence-dir: a child writing to the
  default reports/evidence would wipe the outer run's evidence at its
  session start;
* started(): a child started now and collected later, so two nested runs
  that only wait (timeouts, sockets) overlap instead of queueing.

`ibgw mock serve` as a child is MockServe: its port is read from the
"listening on" line it prints (a blocking queue read, not a sleep).
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from tests.support import ROOT

REPO = ROOT  # the name the pytest-runner helpers used
PY = sys.executable
CLI = [PY, "-m", "harness.cli"]
RUN_TIMEOUT = 60  # a hard cap per CLI run: the child is killed after it
CHILD_TIMEOUT = 150.0  # a nested pytest run


def cli_env(**extra: str) -> dict[str, str]:
    """The outer environment with the repository on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


CI_POLICY = ("IBGW_REQUIRE_DOCKER", "IBGW_REQUIRE_BROWSER")


def child_env(**extra: str) -> dict[str, str]:
    """The outer environment without the outer run's IBGW_/PYTEST_ variables."""
    # CI's policy (IBGW_REQUIRE_DOCKER/BROWSER: fail, never skip) reaches the children; the run's own settings do not
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBGW_", "PYTEST_")) or k in CI_POLICY}
    env.update(extra)
    return env


def run(cmd: Sequence[str], *, cwd: Path | str = ROOT, env: dict[str, str] | None = None,
        timeout: float = RUN_TIMEOUT, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run cmd to completion with text output captured; killed after `timeout` seconds."""
    return subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, input=input)


def run_cli(*args: str, timeout: float = RUN_TIMEOUT, env: dict[str, str] | None = None,
            cwd: Path | str = ROOT) -> subprocess.CompletedProcess[str]:
    """`ibgw ARGS` (as `python -m harness.cli`), repository on PYTHONPATH."""
    return run([*CLI, *args], cwd=cwd, env=env if env is not None else cli_env(), timeout=timeout)


def pytest_cmd(*args: str, evidence_dir: Path | None = None, python: str = PY) -> list[str]:
    """`python -m pytest ARGS` without the cache (a child must not write the outer run's cache),
    with its own --evidence-dir when given."""
    own = ["--evidence-dir", str(evidence_dir)] if evidence_dir is not None else []
    return [python, "-m", "pytest", *args, "-p", "no:cacheprovider", *own]


class Started:
    """A child started now and collected later (`result()`): output goes to a
    file, so a chatty child can never block on a full pipe while nobody reads."""

    def __init__(self, cmd: Sequence[str], *, cwd: Path | str = ROOT, env: dict[str, str] | None = None,
                 timeout: float = CHILD_TIMEOUT, merge_stderr: bool = True, log: Path | None = None,
                 new_session: bool = False) -> None:
        """merge_stderr=False: stderr is collected apart (result().stderr), for a test that parses stdout.
        log: the output goes to this file, which a test may read while the child runs.
        new_session: the child leads its own session (a signal test: no terminal signal reaches it)."""
        self.cmd = list(cmd)
        self.timeout = timeout
        self._log = log
        out: IO[bytes] = log.open("wb") if log is not None else tempfile.TemporaryFile()
        self._err: IO[bytes] | None = None if merge_stderr else tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, cwd=cwd, env=env, stdout=out, start_new_session=new_session,
                                     stderr=subprocess.STDOUT if self._err is None else self._err)
        self._out: IO[bytes] | None = out if log is None else None
        if log is not None:
            out.close()  # the child has its own descriptor; the log is read back by path
        self._result: subprocess.CompletedProcess[str] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send_signal(self, sig: int) -> None:
        """Signal the child (a test of how it handles SIGINT/SIGTERM); collect it with result()."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def result(self) -> subprocess.CompletedProcess[str]:
        """Wait (bounded by the timeout given at start) and return exit code and combined output."""
        if self._result is None:
            try:
                self.proc.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
            text = self._log.read_text(errors="replace") if self._log is not None else _drain(self._out)
            self._result = subprocess.CompletedProcess(self.cmd, self.proc.returncode, text, _drain(self._err))
        return self._result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for file in (self._out, self._err):
            if file is not None:
                file.close()


def _drain(file: IO[bytes] | None) -> str:
    """A child's output file read from the start and closed ("" for none)."""
    if file is None:
        return ""
    file.seek(0)
    text = file.read().decode(errors="replace")
    file.close()
    return text


async def arun(cmd: Sequence[str], *, cwd: Path | str = ROOT, env: dict[str, str] | None = None,
               timeout: float = RUN_TIMEOUT, merge_stderr: bool = False) -> subprocess.CompletedProcess[str]:
    """run() from an async test: the test's event loop (and a mock Gateway on it) keeps serving
    while the child runs; killed and reaped on timeout or cancellation. merge_stderr: one stream."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return subprocess.CompletedProcess(list(cmd), proc.returncode or 0, out.decode(errors="replace"),
                                       (err or b"").decode(errors="replace"))


async def run_pytest(*args: str, evidence_dir: Path, cwd: Path = ROOT, env: dict[str, str] | None = None,
                     timeout: float = CHILD_TIMEOUT, python: str = PY,
                     ibgw_options: bool = True) -> tuple[int, str]:
    """(exit code, combined output) of `python -m pytest ARGS` in cwd, from an async test (so a mock
    Gateway on the test's own event loop keeps serving while the child runs).
    ibgw_options=False: no --evidence-dir either (a run naming no ibgw option)."""
    cmd = pytest_cmd(*args, evidence_dir=evidence_dir if ibgw_options else None, python=python)
    done = await arun(cmd, cwd=cwd, env=env if env is not None else child_env(), timeout=timeout, merge_stderr=True)
    return done.returncode, done.stdout


class Spawned:
    """A long-running child (a server, a proxy, a stand-in) whose output is read line by line on a
    thread into a queue, so a test waits for a line it prints (a blocking queue read with a
    timeout, not a sleep) and a chatty child never blocks on a full pipe. stream: "stdout",
    "stderr" or "both" (stderr merged into stdout); the other stream, unless merged, goes to
    `other` (a path) or nowhere."""

    def __init__(self, cmd: Sequence[str], *, cwd: Path | str = ROOT, env: dict[str, str] | None = None,
                 stream: str = "stdout", other: Path | None = None, stdin: bool = False) -> None:
        """stdin=True: the child reads what send() writes (a worker driven over a line protocol)."""
        self.cmd = list(cmd)
        self._other = other.open("wb") if other is not None else None
        sink = self._other if self._other is not None else subprocess.DEVNULL
        out, err = {"stdout": (subprocess.PIPE, sink), "stderr": (sink, subprocess.PIPE),
                    "both": (subprocess.PIPE, subprocess.STDOUT)}[stream]
        self.proc = subprocess.Popen(self.cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True,
                                     stdin=subprocess.PIPE if stdin else None)
        self._pipe = self.proc.stderr if stream == "stderr" else self.proc.stdout
        self.lines: list[str] = []  # every line read so far
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._pipe is not None
        for line in self._pipe:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first line (from here on) matching the regex `pattern`; AssertionError when the child
        ends or `timeout` seconds pass without one."""
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{self.cmd[:4]} printed no {pattern!r} within {timeout} s") from None
            if line is None:
                self._queue.put(None)  # stays at the end for any later wait
                raise AssertionError(f"{self.cmd[:4]} exited ({self.proc.wait(10)}) without {pattern!r}: "
                                     f"{''.join(self.lines)[-2000:]}")
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Signal the child (SIGTERM: it cleans up), kill it after `timeout`; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        if self._pipe is not None:
            self._pipe.close()
        if self._other is not None:
            self._other.close()
        return self.proc.returncode

    def send(self, text: str) -> None:
        """Write text to the child's stdin (started with stdin=True) and flush it."""
        assert self.proc.stdin is not None, "started without stdin=True"
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        """End the child's input: a worker reading stdin sees its parent go away."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def rest(self) -> str:
        """The lines no wait_for() has read, once the child has ended (after stop()): what it
        printed after the line a test waited for, e.g. its summary on the way out."""
        rest: list[str] = []
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._queue.put(None)
                break
            rest.append(line)
        self.lines.extend(rest)
        return "".join(rest)

    async def astop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """stop() from an async test: the event loop keeps serving while the child exits."""
        return await asyncio.to_thread(self.stop, sig, timeout)

    def __enter__(self) -> Spawned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MockServe(Spawned):
    """`ibgw mock serve` as a subprocess; its port is read from the
    "listening on" line it prints (a blocking queue read, not a sleep)."""

    def __init__(self, stderr_path: Path, *args: str, port: int = 0) -> None:
        self.stderr_path = stderr_path
        super().__init__([*CLI, "mock", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                         env=cli_env(), other=stderr_path)  # the log to a file: it can never block the child
        try:
            match = self.wait_for(r"listening on 127\.0\.0\.1:(\d+) ", timeout=30)
        except AssertionError as exc:
            self.close()
            raise AssertionError(f"mock serve: {exc}; log: {stderr_path.read_text()[-2000:]}") from None
        self.listening_line = match.string.rstrip("\n")
        self.port = int(match.group(1))

    @property
    def stderr(self) -> str:
        if self._other is not None and not self._other.closed:
            self._other.flush()
        return self.stderr_path.read_text()

    def close(self) -> None:
        self.stop()
