"""What a rung records about an attempt: the evidence dicts and one-line summaries.

Why apart from the rungs: several rungs (and both handshake attempts) describe an attempt the same
way, so the words are written once."""

from __future__ import annotations

from typing import Any

from ...clients.base import PHASE_MANAGED_ACCOUNTS, PHASE_NEXT_VALID_ID, PHASE_SERVER_VERSION
from ...core.redact import redact_accounts, redact_text
from .attempt import Attempt


def version_ev(attempt: Attempt) -> dict[str, Any]:
    r = attempt.result
    assert r is not None
    ev: dict[str, Any] = {"server_version": r.server_version, "connection_time": r.connection_time,
                          "client_range": f"v{r.client.min_version}..{r.client.max_version}",
                          "version_reply_ms": attempt.phases_ms.get(PHASE_SERVER_VERSION)}
    if r.server_version is not None and r.client.max_version and r.server_version < r.client.max_version:
        # The negotiated version is min(build's max, client's max); this
        # client offers more, so the number is the build's own maximum.
        ev["build_max_server_version"] = r.server_version
        ev["note"] = (f"v{r.server_version} is the Gateway build's maximum (this client offers up to "
                      f"v{r.client.max_version})")
    return ev


def version_summary(attempt: Attempt) -> str:
    r = attempt.result
    assert r is not None
    text = f"server version {r.server_version} in {attempt.phases_ms.get(PHASE_SERVER_VERSION)} ms"
    if r.server_version is not None and r.client.max_version and r.server_version < r.client.max_version:
        text += " (the build's maximum)"
    return text


def next_id_ev(attempt: Attempt) -> dict[str, Any]:
    r = attempt.result
    assert r is not None
    return {"client_id": attempt.client_id, "next_valid_id": r.next_valid_id,
            "next_valid_id_ms": attempt.phases_ms.get(PHASE_NEXT_VALID_ID), "gateway_codes": attempt.codes,
            "gateway_messages": [f"{msg.code} {redact_text(msg.message, r.accounts)}" for msg in r.messages]}


def next_id_summary(attempt: Attempt) -> str:
    r = attempt.result
    assert r is not None
    return f"nextValidId {r.next_valid_id} in {attempt.phases_ms.get(PHASE_NEXT_VALID_ID)} ms"


def accounts_ev(attempt: Attempt) -> dict[str, Any]:
    r = attempt.result
    assert r is not None
    return {"accounts": redact_accounts(r.accounts), "count": len(r.accounts),
            "managed_accounts_ms": attempt.phases_ms.get(PHASE_MANAGED_ACCOUNTS)}


def accounts_text(attempt: Attempt) -> str:
    accounts = attempt.result.accounts if attempt.result is not None else []
    return ", ".join(redact_accounts(accounts)) or "(none)"


def outcome_text(attempt: Attempt, timeout: float) -> str:
    return {"ok": "answered", "silent": f"no version reply within {timeout:g} s either",
            "refused": "connection refused", "closed": "closed before the version reply",
            "id_in_use": "error 326 too", "no_next_id": f"no nextValidId within {timeout:g} s",
            "no_accounts": "no managedAccounts"}.get(attempt.kind, attempt.cause or attempt.kind)
