"""Client adapters: the harness's raw client and the real client libraries,
unmodified, behind one interface (base.ClientAdapter)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..core.errors import HarnessError
from ..extras import installed, require
from .base import ClientAdapter, ConnectResult, HandshakeError


@dataclass(frozen=True)
class ClientEntry:
    """A built-in client: where its adapter class lives (imported only when
    asked for, so the raw client works without the real libraries, e.g. in
    a bare python3 image), the package it needs, and whether `all` runs it."""

    name: str
    adapter: str  # "module:Class", relative to harness.clients
    library: str | None = None  # the package a base install does not bring (extras in pyproject.toml)
    in_all: bool = True


# The built-in clients, in the order `all` runs them. A new client is one line here.
CLIENTS: dict[str, ClientEntry] = {e.name: e for e in (
    ClientEntry("raw", "raw:RawClient"),
    ClientEntry("ib_async", "ib_async_client:IbAsyncClient", library="ib_async"),
    ClientEntry("ibapi", "ibapi_client:IbapiClient", library="ibapi"),
    # The field-report anti-pattern; an example, never in --client all.
    ClientEntry("naive", "naive:NaiveClient", in_all=False),
)}
CLIENT_NAMES: tuple[str, ...] = tuple(e.name for e in CLIENTS.values() if e.in_all)
# Built-in clients that need a package the base install does not bring (extras in pyproject.toml).
LIBRARY_OF: dict[str, str] = {e.name: e.library for e in CLIENTS.values() if e.library}


def available_clients() -> tuple[str, ...]:
    """The built-in clients whose library is installed here (raw always is):
    what `all` means, so a base install runs the raw client rather than
    failing for libraries it deliberately did not install."""
    return tuple(name for name in CLIENT_NAMES if name not in LIBRARY_OF or installed(LIBRARY_OF[name]))


def require_client(name: str) -> None:
    """extras.MissingExtra (one line, naming the extra) when a built-in client's library is missing."""
    if name in LIBRARY_OF:
        require(LIBRARY_OF[name], f"--client {name}")


class UnknownClientError(HarnessError, ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown client {name!r}; valid: {', '.join(CLIENT_NAMES)} or module.path:factory")


def make_client(name: str, **options: object) -> ClientAdapter:
    """A fresh adapter by name, from the CLIENTS table.
    A "module.path:factory" name loads a team's own adapter (clients/custom.py)."""
    if ":" in name:
        from .custom import make_custom_client

        return make_custom_client(name, **options)
    entry = CLIENTS.get(name)
    if entry is None:
        raise UnknownClientError(name)
    require_client(name)
    module_name, _, class_name = entry.adapter.partition(":")
    adapter_class = getattr(importlib.import_module(f"{__name__}.{module_name}"), class_name)
    return adapter_class(**options)


__all__ = ["CLIENTS", "CLIENT_NAMES", "ClientEntry", "LIBRARY_OF", "ClientAdapter", "ConnectResult", "HandshakeError", "UnknownClientError",
           "available_clients", "make_client", "require_client"]
