"""Paper or live: the account check that stops a live run before its first
scenario, and the warning for the live-trading ports.

Why a hard stop: the harness connects, disconnects and churns on purpose
(zombie cycles); against a Gateway logged in to a real-money account that is
a risk nobody should take by accident. Paper ids start with D (DU..., DF...);
anything else counts as live. Ids are only ever shown redacted.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..core.constants import LIVE_PORTS, PAPER_PREFIXES
from ..core.redact import redact_accounts

ALLOW_FLAG = "--allow-live-account"


def non_paper_accounts(accounts: Iterable[str]) -> list[str]:
    return [a for a in accounts if not a.strip().upper().startswith(PAPER_PREFIXES)]


def live_account_stop_message(accounts: list[str], endpoint_label: str,
                              when: str = "before the first scenario") -> str:
    live = non_paper_accounts(accounts)
    return (f"STOPPED {when}: the Gateway at {endpoint_label} manages non-paper account(s) "
            f"{', '.join(redact_accounts(live))} (paper ids start with DU or DF). Point the run at a paper "
            f"Gateway (port 4002 / TWS 7497), or pass {ALLOW_FLAG} if a live account is really intended.")


def live_port_warning(port: int) -> str | None:
    if port not in LIVE_PORTS:
        return None
    return (f"port {port} is the {LIVE_PORTS[port]} port: the harness is read-only and checks the accounts "
            "are paper, but check you meant a live Gateway (paper: 4002, TWS 7497)")


__all__ = ["ALLOW_FLAG", "LIVE_PORTS", "PAPER_PREFIXES", "live_account_stop_message", "live_port_warning",
           "non_paper_accounts"]
