"""Hooks the plugin calls and other plugins implement (`pytest_ibgw_*`).

Why hooks rather than imports: the `gateway` fixture must not know about
live runs (the live-run glue is registered only for them), and a team's
own plugin may want to wrap the session's Gateway the same way. pytest
finds the implementations; the fixture asks through `config.hook`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_ibgw_open_gateway(config: pytest.Config, target: Any, endpoint: Any
                             ) -> AbstractAsyncContextManager[Any] | None:
    """An async context manager that yields the session's GatewayHandle for
    a started target, or None to leave it to the next implementation (the
    plain handle when none takes it). The live-run glue answers for real
    Gateways: the recording proxy, the order guard, the paper-account check."""
