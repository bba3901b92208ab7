"""Moved to harness.pytest_plugin.live (registered only for live runs);
this name stays importable for one release."""

from __future__ import annotations

from .pytest_plugin.live import LiveGatewayHandle, open_gateway_handle, say, wire_source
from .pytest_plugin.options import SET_A_TARGET, is_mock_spec
from .pytest_plugin.state import LiveRun

__all__ = ["SET_A_TARGET", "LiveGatewayHandle", "LiveRun", "is_mock_spec", "open_gateway_handle", "say",
           "wire_source"]
