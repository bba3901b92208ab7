"""Live runs against a real (paper) Gateway: the policy that keeps them gentle
(client id range, connection budget, pause, small zombie counts) and the
session set-up that keeps them safe (paper-account interlock, live-port
warning, the recording proxy with the order guard in front of the Gateway).
Usable without pytest; harness/pytest_plugin/live.py is the glue."""

from .policy import ClientIdAllocator, ConnectionBudget, LivePolicy, parse_id_range

__all__ = ["ClientIdAllocator", "ConnectionBudget", "LivePolicy", "parse_id_range"]
