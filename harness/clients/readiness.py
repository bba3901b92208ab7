"""The reference way to wait until the API is ready: events, not sleeps.

"Ready" is what a trading process needs before its first request: the
version handshake done, nextValidId received and a non-empty
managedAccounts. Field reports show the common failure is treating a
connected socket (or a returned connect call) as ready while accounts are
still empty; this check refuses that.
"""

from __future__ import annotations

from ..targets.base import Endpoint
from .base import (
    PHASE_MANAGED_ACCOUNTS,
    PHASE_NEXT_VALID_ID,
    ClientAdapter,
    ConnectResult,
    HandshakeError,
)


async def connect_until_ready(client: ClientAdapter, endpoint: Endpoint, client_id: int, *,
                              timeout: float = 10.0, readonly: bool = True) -> ConnectResult:
    """Connect and return only when the API is ready; HandshakeError otherwise.

    The adapter's connect already waits on the library's own events; this
    adds the checks a library may skip (ib_async returns with an empty
    account list when managedAccounts carried none).
    """
    result = await client.connect(endpoint.host, endpoint.port, client_id, timeout=timeout, readonly=readonly)
    if result.next_valid_id is None:
        result.ok, result.failed_phase = False, PHASE_NEXT_VALID_ID
        result.error = "connect returned but nextValidId never arrived"
        raise HandshakeError(PHASE_NEXT_VALID_ID, result.error, result)
    if not result.accounts:
        result.ok, result.failed_phase = False, PHASE_MANAGED_ACCOUNTS
        result.error = "connect returned but managedAccounts is empty"
        raise HandshakeError(PHASE_MANAGED_ACCOUNTS, result.error, result)
    return result
