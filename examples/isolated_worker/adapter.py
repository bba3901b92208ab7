"""The harness adapter for the isolated worker: a ClientAdapter that spawns
worker.py and speaks its JSON Lines protocol.

    pytest suites --client examples.isolated_worker.adapter:factory
    ibgw doctor --client examples.isolated_worker.adapter:factory

This is the shape of any team's adapter (harness/clients/base.py
ClientAdapter): an ``info`` attribute and four async methods, ``connect``
(returns a ConnectResult only once the API is ready, raises HandshakeError
naming the phase otherwise), ``ping``, ``account_snapshot`` and
``disconnect`` (never raises). One adapter instance is one connection: the
harness calls ``factory()`` again for the next one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.clients.base import (
    PHASE_API_READY,
    AccountSnapshot,
    AccountValue,
    ClientInfo,
    ConnectResult,
    GatewayMessage,
    HandshakeError,
    PhaseClock,
    Position,
)
from harness.clients.startup import Bar, PnLValue, QualifiedContract, Snapshot, StartupError
from harness.protocol.messages import Contract

WORKER = Path(__file__).with_name("worker.py")
# Start-up of a fresh interpreter that imports ib_async, on a slow CI box.
SPAWN_ALLOWANCE_S = 15.0
EXIT_WAIT_S = 5.0


class WorkerError(Exception):
    def __init__(self, message: str, phase: str = "request", messages: list[dict[str, Any]] | None = None,
                 code: int = 0) -> None:
        super().__init__(message)
        self.phase = phase
        self.messages = messages or []
        self.code = code


class IsolatedWorkerClient:
    """One worker process, one IB connection."""

    worker_script: Path = WORKER
    label = "isolated_worker"

    def __init__(self) -> None:
        try:
            version = metadata.version("ib_async")
        except metadata.PackageNotFoundError:  # pragma: no cover
            version = "unknown"
        self.info = ClientInfo(self.label, "ib_async", version)
        self._proc: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._stderr_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------ the protocol

    def connect_request(self, host: str, port: int, client_id: int, timeout: float, readonly: bool) -> dict[str, Any]:
        """The connect request, parameters nested under "params" as the worker's protocol says."""
        return {"command": "connect",
                "params": {"host": host, "port": port, "client_id": client_id, "timeout": timeout,
                           "readonly": readonly}}

    async def _spawn(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, str(self.worker_script), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            self._stderr.append(line.decode(errors="replace").rstrip())

    async def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its reply; WorkerError with the worker's phase otherwise."""
        async with self._lock:
            proc = self._proc
            if proc is None or proc.returncode is not None or proc.stdin is None or proc.stdout is None:
                raise WorkerError("the worker process is not running")
            request = {"id": next(self._ids), **request}
            try:
                proc.stdin.write((json.dumps(request) + "\n").encode())
                await proc.stdin.drain()
                line = await asyncio.wait_for(proc.stdout.readline(), timeout)
            except TimeoutError:
                raise WorkerError(f"the worker did not answer {request['command']} within {timeout:g} s") from None
            except (BrokenPipeError, ConnectionError) as exc:
                raise WorkerError(f"the worker process went away: {exc}") from None
            if not line:
                tail = " | ".join(self._stderr) or "no stderr"
                raise WorkerError(f"the worker exited without answering {request['command']}: {tail}")
            answer = json.loads(line)
            if answer.get("status") != "success":
                raise WorkerError(answer.get("error") or "the worker reported an error",
                                  answer.get("phase") or "request", answer.get("messages"), int(answer.get("code") or 0))
            return dict(answer.get("data") or {})

    # ------------------------------------------------------------ ClientAdapter

    async def connect(self, host: str, port: int, client_id: int, *, timeout: float = 10.0,
                      readonly: bool = True) -> ConnectResult:
        clock = PhaseClock()
        result = ConnectResult(self.info, host, port, client_id, readonly, phases=clock.phases)
        if self._proc is None:
            await self._spawn()
        try:
            # ib_async applies timeout to each connect step (about 4x in total).
            data = await self._call(self.connect_request(host, port, client_id, timeout, readonly),
                                    timeout * 4 + SPAWN_ALLOWANCE_S)
        except WorkerError as exc:
            result.messages = _messages(exc.messages)
            result.failed_phase, result.error = exc.phase, str(exc)
            await self.disconnect()
            raise HandshakeError(exc.phase, str(exc), result) from None
        # The worker sees the socket; the adapter only knows "ready" and the
        # values the worker reports. Wire timings come from the transcript.
        clock.mark(PHASE_API_READY)
        result.ok = True
        result.server_version = data.get("server_version")
        result.next_valid_id = data.get("next_valid_id")
        result.accounts = list(data.get("accounts") or [])
        result.messages = _messages(data.get("messages"))
        return result

    async def ping(self, timeout: float = 5.0) -> float:
        started = time.monotonic()
        try:
            await self._call({"command": "ping", "params": {"timeout": timeout}}, timeout + 5)
        except WorkerError as exc:
            raise TimeoutError(str(exc)) from None
        return time.monotonic() - started

    async def account_snapshot(self, timeout: float = 10.0) -> AccountSnapshot:
        try:
            data = await self._call({"command": "snapshot", "params": {"timeout": timeout}}, timeout * 3 + 5)
        except WorkerError as exc:
            raise TimeoutError(str(exc)) from None
        return AccountSnapshot(
            accounts=list(data.get("accounts") or []),
            positions=[Position(**p) for p in data.get("positions") or []],
            account_values=[AccountValue(**v) for v in data.get("account_values") or []],
            portfolio_items=int(data.get("portfolio_items") or 0),
            positions_end=bool(data.get("positions_end")),
            account_download_end=list(data.get("account_download_end") or []),
            executions_end=bool(data.get("executions_end")),
        )

    # ------------------------------------------------------------ the app's start-up steps

    async def _step(self, command: str, step: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            return await self._call({"command": command, "params": {**params, "timeout": timeout}}, timeout + 5)
        except WorkerError as exc:
            message = str(exc).partition(": ")[2] if exc.code else str(exc)
            raise StartupError(step, exc.code, message) from None

    async def qualify(self, spec: Contract, timeout: float = 10.0) -> QualifiedContract:
        data = await self._step("qualify", "qualify", asdict(spec), timeout)
        data.pop("messages", None)
        return QualifiedContract.from_fields(**data)

    async def historical_bars(self, spec: Contract, duration: str = "1 D", bar_size: str = "5 mins",
                              what_to_show: str = "TRADES", timeout: float = 30.0) -> list[Bar]:
        data = await self._step("bars", "historical_bars", {**asdict(spec), "duration": duration,
                                                            "bar_size": bar_size, "what_to_show": what_to_show},
                                timeout)
        return [Bar(**b) for b in data["bars"]]

    async def snapshot(self, spec: Contract, market_data_type: int = 1, timeout: float = 10.0) -> Snapshot:
        data = await self._step("quote", "snapshot", {**asdict(spec), "market_data_type": market_data_type},
                                timeout)
        data.pop("messages", None)
        return Snapshot(**data)

    async def pnl(self, account: str = "", timeout: float = 10.0) -> PnLValue:
        data = await self._step("pnl", "pnl", {"account": account}, timeout)
        data.pop("messages", None)
        return PnLValue(**data)

    async def disconnect(self) -> None:
        """Ask the worker to disconnect and exit; kill it only if it does not."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(Exception):
                await self._call({"command": "shutdown", "params": {}}, EXIT_WAIT_S)
            with contextlib.suppress(Exception):
                proc.stdin.close()
        self._proc = None
        try:
            await asyncio.wait_for(proc.wait(), EXIT_WAIT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._stderr_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._stderr_task, 1.0)
            self._stderr_task = None


def _messages(raw: list[dict[str, Any]] | None) -> list[GatewayMessage]:
    return [GatewayMessage(int(m.get("req_id", -1)), int(m.get("code", 0)), str(m.get("message", "")))
            for m in raw or []]


def factory(**options: Any) -> IsolatedWorkerClient:
    """What `--client examples.isolated_worker.adapter:factory` calls."""
    return IsolatedWorkerClient(**options)
