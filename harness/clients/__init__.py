"""Client adapters: the harness's raw client and the real client libraries,
unmodified, behind one interface (base.ClientAdapter)."""

from __future__ import annotations

from ..core.errors import HarnessError
from ..extras import installed, require
from .base import ClientAdapter, ConnectResult, HandshakeError

CLIENT_NAMES: tuple[str, ...] = ("raw", "ib_async", "ibapi")
# Built-in clients that need a package the base install does not bring (extras in pyproject.toml).
LIBRARY_OF: dict[str, str] = {"ib_async": "ib_async", "ibapi": "ibapi"}


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
    """A fresh adapter by name. Imports lazily so the raw client works
    without the real libraries installed (e.g. inside a bare python3 image).
    A "module.path:factory" name loads a team's own adapter (clients/custom.py)."""
    if ":" in name:
        from .custom import make_custom_client

        return make_custom_client(name, **options)
    if name == "raw":
        from .raw import RawClient

        return RawClient(**options)  # type: ignore[arg-type]
    if name in LIBRARY_OF:
        require_client(name)
    if name == "ib_async":
        from .ib_async_client import IbAsyncClient

        return IbAsyncClient(**options)  # type: ignore[arg-type]
    if name == "ibapi":
        from .ibapi_client import IbapiClient

        return IbapiClient(**options)  # type: ignore[arg-type]
    if name == "naive":  # the field-report anti-pattern; an example, never in --client all
        from .naive import NaiveClient

        return NaiveClient(**options)  # type: ignore[arg-type]
    raise UnknownClientError(name)


__all__ = ["CLIENT_NAMES", "LIBRARY_OF", "ClientAdapter", "ConnectResult", "HandshakeError", "UnknownClientError",
           "available_clients", "make_client", "require_client"]
