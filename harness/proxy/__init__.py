"""The fault-injecting, recording TCP proxy (loopback only): Toxiproxy's
toxics for the TWS API, a decoded two-way transcript, request guards."""

from __future__ import annotations

from ..protocol.frame import Frame
from .faults import SPECS, ProxyFault, ProxyFaultError, parse_fault
from .proxy import FaultProxy, ProxyAddressError, require_loopback
from .wire import RequestGuard, order_guard

__all__ = ["SPECS", "FaultProxy", "Frame", "ProxyAddressError", "ProxyFault", "ProxyFaultError", "RequestGuard",
           "order_guard", "parse_fault", "require_loopback"]
