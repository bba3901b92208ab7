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

from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..mock.control import HttpError, JsonControlServer
from .faults import ProxyFaultError
from .proxy import FaultProxy


class ProxyControlServer(JsonControlServer):
    client_errors = (ProxyFaultError,)

    def __init__(self, proxy: FaultProxy, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.proxy = proxy

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
