"""The example worker's own protocol, driven directly over stdin/stdout as a
team's parent process would: parameters where the protocol says, clear
errors otherwise, and a clean exit (one close of the socket) when the
parent goes away."""

from __future__ import annotations

import asyncio
import json
import sys

from harness.mock import MockGateway
from tests.support.processes import REPO, Spawned

WORKER = REPO / "examples" / "isolated_worker" / "worker.py"
TIMEOUT = 15.0


class Worker:
    def __init__(self, child: Spawned) -> None:
        self.child = child

    @classmethod
    async def start(cls) -> Worker:
        return cls(Spawned([sys.executable, str(WORKER)], stdin=True))  # stderr: nowhere

    async def ask(self, request: dict | bytes) -> dict:
        line = request.decode() if isinstance(request, bytes) else json.dumps(request) + "\n"
        self.child.send(line)
        answer = await asyncio.to_thread(self.child.wait_for, r".*", TIMEOUT)  # its next line
        return json.loads(answer.string)

    async def close_stdin_and_wait(self) -> int:
        self.child.close_stdin()
        try:
            return await asyncio.to_thread(self.child.proc.wait, TIMEOUT)
        finally:
            await self.child.astop()  # a no-op once it has exited; the reader and pipes closed


async def test_requests_are_checked_and_parameters_must_be_nested():
    worker = await Worker.start()
    try:
        top_level = await worker.ask({"id": 1, "command": "connect", "host": "127.0.0.1", "port": 1, "client_id": 3})
        assert top_level["status"] == "error" and top_level["id"] == 1
        assert "found host, port, client_id at the top level: they belong under 'params'" in top_level["error"]
        missing = await worker.ask({"id": 2, "command": "connect", "params": {"host": "127.0.0.1"}})
        assert missing["error"] == "connect: params lacks port, client_id"
        assert (await worker.ask({"id": 3, "command": "ping"}))["error"] == "not connected"
        assert "unknown command 'trade'" in (await worker.ask({"id": 4, "command": "trade"}))["error"]
        assert "not a JSON request" in (await worker.ask(b"{oops\n"))["error"]
        refused = await worker.ask({"id": 5, "command": "connect",
                                    "params": {"host": "127.0.0.1", "port": 1, "client_id": 3, "timeout": 2}})
        assert (refused["status"], refused["phase"]) == ("error", "tcp_connect")
    finally:
        assert await worker.close_stdin_and_wait() == 0


async def test_connect_answers_when_ready_and_the_parent_leaving_closes_the_socket_once():
    async with MockGateway(port=0, faults=["delayed-accounts=500"]) as gw:
        worker = await Worker.start()
        reply = await worker.ask({"id": 1, "command": "connect",
                                  "params": {"host": "127.0.0.1", "port": gw.port, "client_id": 21, "timeout": 5}})
        assert reply["status"] == "success", reply
        # It answered only once the accounts had arrived, however late.
        assert reply["data"]["accounts"] == ["DU1234567"] and reply["data"]["api_ready_s"] >= 0.5
        assert reply["data"]["next_valid_id"] is not None
        assert (await worker.ask({"id": 2, "command": "ping"}))["status"] == "success"
        assert await worker.close_stdin_and_wait() == 0  # the parent went away
        assert await gw.wait_client_id_free(21, timeout=TIMEOUT)
        record = gw.record_for_client(21)
        assert record is not None and record.close_cause == "client closed the connection"
