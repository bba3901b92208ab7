"""The proxy's control endpoint: JSON over HTTP on loopback, so a proxy in
another process (`ibgw proxy --control-port N`) is steered with curl or the
soak's schedule exactly like the mock. The HTTP request parsing is the
mock control endpoint's (harness/mock/control.py), imported, not copied.

    GET    /state                      listen/upstream, faults, open connections, guard denials
    GET    /faults                     active and valid faults
    POST   /faults  {"fault": "latency=200,50/down"}   set (or replace) one
    DELETE /faults                     clear all        DELETE /faults/NAME   clear one
    POST   /reset                      reset (RST) every open connection once
    GET    /transcript[?conn=N]        the decoded frames as text, account ids redacted
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..mock.control import _REASONS, HttpError, _read_request
from .faults import ProxyFaultError
from .proxy import FaultProxy


class ProxyControlServer:
    def __init__(self, proxy: FaultProxy, host: str = "127.0.0.1", port: int = 0) -> None:
        self.proxy = proxy
        self.host = host
        self.requested_port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> ProxyControlServer:
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

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status, payload = 200, {}
        try:
            method, target, body = await asyncio.wait_for(_read_request(reader), timeout=10)
            payload = await self._route(method, target, body)
        except HttpError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except ProxyFaultError as exc:
            status, payload = 400, {"error": str(exc)}
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
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

    async def _route(self, method: str, target: str, body: dict[str, Any]) -> dict[str, Any]:
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        if path == "/state" and method == "GET":
            return self.proxy.state()
        if path == "/faults" and method == "GET":
            return self.proxy.faults.to_dict()
        if path == "/faults" and method == "POST":
            text = body.get("fault")
            if not isinstance(text, str):
                raise HttpError(400, 'body must be {"fault": "NAME[=VALUE][/DIRECTION]"}')
            self.proxy.set_fault(text)
            return {"active": self.proxy.faults.describe()}
        if path == "/faults" and method == "DELETE":
            self.proxy.clear_fault()
            return {"active": []}
        if path.startswith("/faults/") and method == "DELETE":
            self.proxy.clear_fault(path.removeprefix("/faults/"))
            return {"active": self.proxy.faults.describe()}
        if path == "/reset" and method == "POST":
            return {"reset": await self.proxy.reset_all()}
        if path == "/transcript" and method == "GET":
            conn = parse_qs(parts.query).get("conn", [None])[0]
            if conn is not None and not conn.isdigit():
                raise HttpError(400, "conn must be a connection number")
            return {"transcript": self.proxy.transcript_text(int(conn) if conn else None)}
        known = {"/state", "/faults", "/reset", "/transcript"}
        if path in known or path.startswith("/faults/"):
            raise HttpError(405, f"{method} not allowed on {path}")
        raise HttpError(404, f"no such endpoint {path}; try GET /state")
