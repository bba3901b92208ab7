"""Moved to harness.clients.readiness (clients/reconnecting.py needs it; scenarios sit above clients)."""
from ..clients.readiness import connect_until_ready  # noqa: F401
