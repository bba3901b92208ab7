"""The mock's control endpoint: JSON over HTTP, standard library only.

Why HTTP: a mock running in another process or a container must be
steerable by anything (curl, the soak's fault schedule, a colleague's
script) without importing the harness. Loopback by default.

    GET    /state                 what the mock is doing, faults included
    GET    /faults                the valid faults with their help text
    POST   /faults   {"fault": "delayed-accounts=2000"}     set (or replace) one
    DELETE /faults                clear all      DELETE /faults/NAME   clear one
    POST   /restart  {"down": 5}  the daily restart
    POST   /drop                  drop every connection now
    GET    /connections           the recent connection records (no frames)
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any, Self

from .faults import SPECS, FaultError

if TYPE_CHECKING:
    from .gateway import MockGateway

log = logging.getLogger("harness.mock.control")

MAX_BODY = 64 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large"}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class JsonControlServer:
    """A small JSON-over-HTTP endpoint on loopback: lifecycle, request
    reading and response writing. Subclasses supply `_route` and the error
    types that mean "bad request" (a bad fault name, say). The mock's and
    the proxy's control endpoints share it."""

    client_errors: tuple[type[Exception], ...] = ()

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "control endpoint not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def _route(self, method: str, target: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status, payload = 200, {}
        try:
            method, target, body = await asyncio.wait_for(_read_request(reader), timeout=10)
            payload = await self._route(method, target, body)
        except HttpError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except self.client_errors as exc:
            status, payload = 400, {"error": str(exc)}
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            status, payload = 400, {"error": f"bad request: {type(exc).__name__}"}
        data = json.dumps(payload, indent=1).encode()
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
        try:
            writer.write(head + data)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class ControlServer(JsonControlServer):
    """The mock Gateway's endpoint (routes in the module docstring)."""

    client_errors = (FaultError,)

    def __init__(self, gateway: MockGateway, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.gw = gateway

    async def _route(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        path = path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/state" and method == "GET":
            return self.gw.state()
        if path == "/faults" and method == "GET":
            return {"active": self.gw.faults.describe(),
                    "valid": {s.name: {"usage": s.usage, "description": s.description, "source": s.source}
                              for s in SPECS.values()}}
        if path == "/faults" and method == "POST":
            text = body.get("fault")
            if not isinstance(text, str):
                raise HttpError(400, 'body must be {"fault": "NAME[=VALUE]"}')
            self.gw.set_fault(text)
            return {"active": self.gw.faults.describe()}
        if path == "/faults" and method == "DELETE":
            self.gw.clear_fault()
            return {"active": []}
        if path.startswith("/faults/") and method == "DELETE":
            self.gw.clear_fault(path.removeprefix("/faults/"))
            return {"active": self.gw.faults.describe()}
        if path == "/restart" and method == "POST":
            down = body.get("down", 0)
            if not isinstance(down, (int, float)) or down < 0:
                raise HttpError(400, '"down" must be a number of seconds >= 0')
            asyncio.get_running_loop().create_task(self.gw.restart(float(down)))
            return {"restarting": True, "down": down}
        if path == "/drop" and method == "POST":
            return {"dropped": await self.gw.drop_all("dropped through the control endpoint")}
        if path == "/connections" and method == "GET":
            return {"connections": [{k: v for k, v in r.to_dict().items() if k != "frames"}
                                    for r in list(self.gw.records)[-100:]]}
        known = {"/state", "/faults", "/restart", "/drop", "/connections"}
        if path in known or path.startswith("/faults/"):
            raise HttpError(405, f"{method} not allowed on {path}")
        raise HttpError(404, f"no such endpoint {path}; try GET /state")


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, Any]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, path = parts[0].upper(), parts[1]
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_BODY:
        raise HttpError(413, f"body over {MAX_BODY} bytes")
    body: dict[str, Any] = {}
    if length:
        raw = await reader.readexactly(length)
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise HttpError(400, "body is not JSON") from None
        if not isinstance(parsed, dict):
            raise HttpError(400, "body must be a JSON object")
        body = parsed
    return method, path, body
