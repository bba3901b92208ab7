"""Scenarios: async functions that run against a Gateway endpoint through a
client adapter and return Evidence. No pytest here: the suites, the CLI and
the soak call the same functions."""

from ..clients.readiness import connect_until_ready
from .account_sync import run_account_sync
from .app_startup import StartupPlan, run_app_startup
from .handshake import run_handshake

__all__ = ["StartupPlan", "connect_until_ready", "run_account_sync", "run_app_startup", "run_handshake"]
