"""One handshake attempt with the raw client, classified by how far it got.

Why one module: every handshake rung reads an Attempt, so what an outcome means
(silent, closed, 326...) is decided once, here."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from ...clients.base import PHASE_NEXT_VALID_ID, PHASE_SERVER_VERSION, PHASE_TCP, ConnectResult, HandshakeError
from ...clients.raw import DEFAULT_MAX_VERSION, DEFAULT_MIN_VERSION, RawClient
from ...core.constants import CLIENT_ID_IN_USE
from ...core.constants import LIVE_CLIENT_ID_RANGE as PROBE_ID_RANGE
from ..judge import is_non_tws, version_range

# ---------------------------------------------------------------- the attempt


@dataclass
class Attempt:
    """One handshake attempt with the raw client, classified."""

    client_id: int
    # ok | refused | tcp_timeout | tcp_error | closed | silent | id_in_use | no_next_id | no_accounts
    # | closed_after_start | non_tws | version_range
    kind: str
    result: ConnectResult | None
    client: RawClient  # connected only when kind == "ok"; after a failure it still holds what arrived
    cause: str = ""
    elapsed_s: float = 0.0

    @property
    def phases_ms(self) -> dict[str, float]:
        phases = self.result.phases if self.result is not None else {}
        return {p: round(s * 1000, 1) for p, s in phases.items()}

    @property
    def codes(self) -> list[int]:
        return [msg.code for msg in self.result.messages] if self.result is not None else []

    def brief(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "outcome": self.kind, "cause": self.cause,
                "elapsed_s": round(self.elapsed_s, 3), "phases_ms": self.phases_ms,
                "gateway_codes": self.codes}


async def try_handshake(host: str, port: int, client_id: int, timeout: float,
                   client_range: tuple[int, int] | None = None) -> Attempt:
    low, high = client_range or (DEFAULT_MIN_VERSION, DEFAULT_MAX_VERSION)
    client = RawClient(low, high, await_account_value=False)
    started = time.monotonic()
    result: ConnectResult | None
    try:
        result = await client.connect(host, port, client_id, timeout=timeout, readonly=True)
    except HandshakeError as exc:
        result = exc.result
        elapsed = time.monotonic() - started
        if result is not None:
            # What arrived before the failure lives on the client (ConnectResult
            # only copies accounts and nextValidId on success).
            result.accounts = list(client.accounts)
            result.next_valid_id = client.next_valid_id
        return Attempt(client_id, _classify(exc, result), result, client, exc.cause, elapsed)
    return Attempt(client_id, "ok", result, client, "", time.monotonic() - started)


def _classify(exc: HandshakeError, result: ConnectResult | None) -> str:
    phases = result.phases if result is not None else {}
    # RawClient's wording for a timeout in any phase (raw.py: "no answer within N s").
    timed_out = exc.cause.startswith("no answer within")
    if is_non_tws(exc.cause):
        return "non_tws"
    if version_range(exc.cause) is not None:
        return "version_range"
    if PHASE_TCP not in phases:
        if "refused" in exc.cause.lower():
            return "refused"
        return "tcp_timeout" if timed_out else "tcp_error"
    if PHASE_SERVER_VERSION not in phases:
        return "silent" if timed_out else "closed"
    if result is not None and any(msg.code == CLIENT_ID_IN_USE for msg in result.messages):
        return "id_in_use"
    if PHASE_NEXT_VALID_ID in phases:
        # RawClient labels the whole nextValidId+managedAccounts wait as
        # next_valid_id; the phases say which of the two arrived.
        return "no_accounts"
    return "no_next_id" if timed_out else "closed_after_start"


# ---------------------------------------------------------------- a fresh client id (the second attempt)


def fresh_client_id(*avoid: int) -> int:
    rng = random.SystemRandom()
    while True:
        candidate = rng.randint(*PROBE_ID_RANGE)
        if candidate not in avoid:
            return candidate
