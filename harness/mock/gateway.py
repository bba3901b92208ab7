"""The mock IB Gateway server: accepts connections, owns the client-id
registry, the connection cap and every connection's record.

Usable in-process (`async with MockGateway() as gw`) by tests and
benchmarks, and in the foreground by `ibgw mock serve` (serve.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from types import TracebackType

from ..protocol.framing import MAX_FRAME
from .model import AccountModel
from .profiles import GatewayProfile, get_profile
from .session import Session
from .transcript import ConnectionRecord

log = logging.getLogger("harness.mock")

# A real IB Gateway accepts 32 API clients.
DEFAULT_MAX_CLIENTS = 32
# Client requests are small; a limit far below the 16 MiB reply limit keeps
# a hostile length prefix from making the mock buffer megabytes per socket.
DEFAULT_REQUEST_FRAME_LIMIT = 1 << 20
# How many closed connections' records are kept for evidence.
RECORD_HISTORY = 1000
# A client that stops reading may hold at most this much unsent data
# before the mock stops writing to it (drain() then waits).
WRITE_HIGH_WATER = 256 * 1024


class MockGateway:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        profile: GatewayProfile | str = "default",
        model: AccountModel | None = None,
        accounts: list[str] | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        frame_limit: int = DEFAULT_REQUEST_FRAME_LIMIT,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.model = model or AccountModel.default(accounts)
        self.max_clients = max_clients
        self.frame_limit = min(frame_limit, MAX_FRAME)
        self.records: deque[ConnectionRecord] = deque(maxlen=RECORD_HISTORY)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client_ids: dict[int, Session] = {}
        self._conn_ids = itertools.count(1)
        self._released = asyncio.Event()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> MockGateway:
        self._server = await asyncio.start_server(self._accept, self.host, self.requested_port)
        log.info("mock Gateway %s (build %s, server version <= %d) listening on %s:%d",
                 self.profile.name, self.profile.build, self.profile.max_server_version, self.host, self.port)
        return self

    async def stop(self) -> None:
        """Stop accepting, drop every connection, wait for their clean-up."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MockGateway:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("mock Gateway is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def active_connections(self) -> int:
        return len(self._tasks)

    @property
    def client_ids_in_use(self) -> list[int]:
        return sorted(self._client_ids)

    # ------------------------------------------------------------ connections

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        record = ConnectionRecord(next(self._conn_ids), f"{peer[0]}:{peer[1]}" if peer else "?")
        self.records.append(record)
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if len(self._tasks) >= self.max_clients:
            # Assumption (documented): over the cap the Gateway accepts and
            # closes without a reply; clients see it as a handshake timeout.
            record.close(f"connection cap of {self.max_clients} clients reached")
            log.warning("conn %d from %s refused: %s", record.conn_id, record.peer, record.close_cause)
            writer.close()
            return
        session = Session(self, reader, writer, record)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await session.run()
        except asyncio.CancelledError:
            # Our own stop() cancelled it. Ending the callback task normally
            # keeps asyncio's stream machinery from logging a spurious error.
            pass
        finally:
            self._tasks.discard(task)

    def _claim_client_id(self, client_id: int, session: Session) -> bool:
        if client_id in self._client_ids:
            return False
        self._client_ids[client_id] = session
        return True

    def _release_client_id(self, client_id: int, session: Session) -> None:
        if self._client_ids.get(client_id) is session:
            del self._client_ids[client_id]
            self._released.set()

    async def wait_client_id_free(self, client_id: int, timeout: float = 5.0) -> bool:
        """Wait until the mock has seen a client's close and freed its id.

        A client's disconnect() returns before the Gateway side has read the
        EOF; a test that reuses the id at once would race into error 326,
        exactly as against a real Gateway. Returns False on timeout.
        """
        try:
            async with asyncio.timeout(timeout):
                while client_id in self._client_ids:
                    self._released.clear()
                    await self._released.wait()
        except TimeoutError:
            return False
        return True

    def record_for_client(self, client_id: int) -> ConnectionRecord | None:
        """The newest connection record of a client id (evidence for a test)."""
        for record in reversed(self.records):
            if record.client_id == client_id:
                return record
        return None
