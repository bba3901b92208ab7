"""An EXAMPLE adapter of an anti-pattern, not a client anyone should use.

Field report 003 (a trading bot's subprocess worker) checked readiness like
this, right after the connect call returned:

    accounts = ib.managedAccounts()
    if not accounts:
        await asyncio.sleep(1)          # "retry once"
        accounts = ib.managedAccounts()
    if not accounts:
        raise ConnectionError("No managed accounts found")

It treats "the version handshake is done" as "the API is ready" and then
guesses how long the rest takes. Against a Gateway whose managedAccounts
arrives later than that guess (fault delayed-accounts=2000 reproduces it)
it gives up although the accounts are on their way. This adapter models
exactly that check on the raw client's codec, so a suite can show the
failure next to the event-waiting reference (scenarios.connect_until_ready
with RawClient), which succeeds against the same Gateway.

Unmodified ib_async is NOT this client: IB.connectAsync waits for
nextValidId and a non-empty managedAccounts itself.
"""

from __future__ import annotations

import asyncio

from .base import PHASE_MANAGED_ACCOUNTS, ClientInfo, ConnectResult, HandshakeError, PhaseClock
from .raw import DEFAULT_MAX_VERSION, DEFAULT_MIN_VERSION, RawClient

NAIVE_CAUSE = "no managed accounts after one retry (naive check)"
# The field report's one retry, after one second.
NAIVE_RETRY_DELAY = 1.0


class _NaiveGaveUp(ConnectionError):
    """Raised inside RawClient.connect so its own clean-up (disconnect, the
    partial ConnectResult) runs; NaiveClient.connect renames the phase."""


class NaiveClient(RawClient):
    """RawClient with field report 003's readiness check instead of an event wait.

    Everything but the readiness check is the raw client's: the TCP connect,
    the version handshake, startApi, the reader task and the phase clock
    (so the evidence still shows when nextValidId and managedAccounts
    really arrived). By default it skips the raw client's wait for a first
    account value, as the modelled worker did.
    """

    def __init__(self, min_version: int = DEFAULT_MIN_VERSION, max_version: int = DEFAULT_MAX_VERSION,
                 *, connect_options: str = "", await_account_value: bool = False,
                 retry_delay: float = NAIVE_RETRY_DELAY) -> None:
        super().__init__(min_version, max_version, connect_options=connect_options,
                         await_account_value=await_account_value)
        self.info = ClientInfo("naive", self.info.package, self.info.version, min_version, max_version)
        self.retry_delay = retry_delay
        self.checks: list[list[str]] = []  # what each naive look at the account list saw
        self._gave_up = False

    async def connect(self, host: str, port: int, client_id: int, *, timeout: float = 10.0,
                      readonly: bool = True) -> ConnectResult:
        self._gave_up = False
        self.checks = []
        try:
            return await super().connect(host, port, client_id, timeout=timeout, readonly=readonly)
        except HandshakeError as exc:
            if not self._gave_up:
                raise
            result = exc.result
            if result is not None:
                result.failed_phase, result.error = PHASE_MANAGED_ACCOUNTS, NAIVE_CAUSE
            raise HandshakeError(PHASE_MANAGED_ACCOUNTS, NAIVE_CAUSE, result) from None

    async def _expect_handshake(self, clock: PhaseClock) -> None:
        """Replaces RawClient's event wait for nextValidId + managedAccounts.

        Runs right after startApi was written: the reader task has not even
        had a turn yet, just as the worker's check ran right after connect().
        """
        self._clock = clock  # the reader task marks the phases on this clock
        self.checks.append(list(self.accounts))
        if self.accounts:
            return
        # THE MODELLED BUG: a fixed sleep standing in for "wait until the
        # accounts have arrived". Correct code awaits the managedAccounts
        # event (RawClient._expect_handshake / connect_until_ready) instead.
        await asyncio.sleep(self.retry_delay)
        self.checks.append(list(self.accounts))
        if self.accounts:
            return
        self._gave_up = True
        raise _NaiveGaveUp(NAIVE_CAUSE)
