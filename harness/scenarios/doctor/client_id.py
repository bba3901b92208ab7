"""The client-id and nextValidId rungs after the version reply: 326 or a bare close after
startApi (a fresh id is tried), no nextValidId, no managedAccounts.

Why one function per outcome: each names different causes from different evidence."""

from __future__ import annotations

from ...clients.base import PHASE_MANAGED_ACCOUNTS
from .attempt import Attempt
from .evidence import accounts_ev, accounts_text, next_id_ev, next_id_summary, outcome_text
from .rungs import account_kind_rung, ready_rungs
from .state import Ladder
from .vocabulary import (
    CAUSE_API_NOT_READY,
    CAUSE_CLOSED_AFTER_START,
    CAUSE_ID_STUCK,
    CAUSE_LOGIN_INCOMPLETE,
    FAIL,
    FIX_API_NOT_READY,
    FIX_ID,
    FIX_LOGIN,
    OK,
    RUNG_ACCOUNT_KIND,
    RUNG_ACCOUNTS,
    RUNG_CLIENT_ID,
    RUNG_CONNECTIVITY,
    RUNG_NEXT_ID,
    RUNG_SYNC,
    WARN,
    Rung,
    skip_after,
)


async def client_id_refused(first: Attempt, ladder: Ladder) -> Attempt | None:
    """nextValidId / client id: 326, or a bare close after startApi; a
    fresh client id tells a stuck id from an API that takes no client."""
    rungs, diagnosis, timeout = ladder.rungs, ladder.diagnosis, ladder.timeout
    second = await ladder.fresh_attempt(first)
    fresh_ev = {"fresh_client_id": second.client_id, "fresh_attempt": second.brief(),
                "fresh_id_helps": second.kind == "ok"}
    refused_326 = first.kind == "id_in_use"
    what = (f"client id {first.client_id} refused with error 326 (already in use)" if refused_326 else
            f"the Gateway closed the connection after startApi with no error message, no 326 ({first.cause})")
    if second.kind == "ok":
        rungs[RUNG_CLIENT_ID] = Rung(
            RUNG_CLIENT_ID, FAIL, {"client_id": first.client_id, "error_326": refused_326,
                                   "first_attempt": first.brief(), **fresh_ev}, FIX_ID,
            f"{what}; a fresh client id {second.client_id} works")
        if not refused_326:
            diagnosis.append(CAUSE_CLOSED_AFTER_START)
        diagnosis.append(CAUSE_ID_STUCK)
        return await ready_rungs(second, rungs, diagnosis, first_id_refused=True, first=first)
    ev = {"first_attempt": first.brief(), **fresh_ev}
    rungs[RUNG_NEXT_ID] = Rung(RUNG_NEXT_ID, FAIL, ev, FIX_API_NOT_READY,
                               f"{what}; a fresh client id {second.client_id} failed too "
                               f"({outcome_text(second, timeout)})")
    rungs[RUNG_CLIENT_ID] = Rung(
        RUNG_CLIENT_ID, FAIL if refused_326 else WARN,
        {"client_id": first.client_id, "error_326": refused_326, **fresh_ev}, FIX_API_NOT_READY,
        f"{what}; a fresh id did not help: the Gateway's API is not taking clients")
    diagnosis.append(CAUSE_API_NOT_READY if refused_326 else CAUSE_CLOSED_AFTER_START)
    skip_after(rungs, "nextValidId never came", RUNG_ACCOUNTS, RUNG_CONNECTIVITY, RUNG_SYNC, RUNG_ACCOUNT_KIND)
    return None


async def no_next_valid_id(first: Attempt, ladder: Ladder) -> Attempt | None:
    """nextValidId: startApi sent, it never came."""
    rungs, diagnosis, timeout = ladder.rungs, ladder.diagnosis, ladder.timeout
    accounts_seen = PHASE_MANAGED_ACCOUNTS in (first.result.phases if first.result else {})
    rungs[RUNG_NEXT_ID] = Rung(
        RUNG_NEXT_ID, FAIL, {"outcome": f"no nextValidId within {timeout:g} s", "attempt": first.brief(),
                             "managed_accounts_arrived": accounts_seen}, FIX_API_NOT_READY,
        f"startApi sent, nextValidId never came within {timeout:g} s"
        + (" (managedAccounts did)" if accounts_seen else ""))
    if accounts_seen:
        rungs[RUNG_ACCOUNTS] = Rung(RUNG_ACCOUNTS, OK, accounts_ev(first),
                                    summary=f"accounts {accounts_text(first)}")
    rungs[RUNG_CLIENT_ID] = Rung(RUNG_CLIENT_ID, OK, {"client_id": first.client_id, "error_326": False},
                                 summary=f"client id {first.client_id} accepted (no error 326)")
    diagnosis.append(CAUSE_API_NOT_READY)
    if accounts_seen:  # the account kind is known even though the API is not ready
        account_kind_rung(first, ladder.port, rungs, diagnosis)
    skip_after(rungs, "the API is not ready", RUNG_ACCOUNTS, RUNG_CONNECTIVITY, RUNG_SYNC, RUNG_ACCOUNT_KIND)
    return None


async def no_managed_accounts(first: Attempt, ladder: Ladder) -> Attempt | None:
    """managedAccounts: nextValidId came, no account listed (login incomplete)."""
    rungs, timeout = ladder.rungs, ladder.timeout
    rungs[RUNG_NEXT_ID] = Rung(RUNG_NEXT_ID, OK, next_id_ev(first), summary=next_id_summary(first))
    rungs[RUNG_ACCOUNTS] = Rung(
        RUNG_ACCOUNTS, FAIL, {"outcome": f"no non-empty managedAccounts within {timeout:g} s",
                              "attempt": first.brief()}, FIX_LOGIN,
        f"nextValidId came, but managedAccounts listed no account within {timeout:g} s")
    rungs[RUNG_CLIENT_ID] = Rung(RUNG_CLIENT_ID, OK, {"client_id": first.client_id, "error_326": False},
                                 summary=f"client id {first.client_id} accepted")
    ladder.diagnosis.append(CAUSE_LOGIN_INCOMPLETE)
    skip_after(rungs, "no managed accounts", RUNG_CONNECTIVITY, RUNG_SYNC, RUNG_ACCOUNT_KIND)
    return None
