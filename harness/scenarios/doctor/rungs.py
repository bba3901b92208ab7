"""The rungs after a ready handshake: version, nextValidId/accounts, IB connectivity, startup
sync, account kind and CLOSE_WAIT sockets; one function each.

Why together: each writes one rung (and its causes) from evidence already gathered, with no
further handshake."""

from __future__ import annotations

import contextlib
from typing import Any

from ...core.constants import LIVE_PORTS, PAPER_PREFIXES
from ...core.redact import redact_accounts
from ..causes import CAUSES
from ..judge import connectivity_detail, connectivity_lost
from .attempt import Attempt
from .evidence import accounts_ev, accounts_text, next_id_ev, next_id_summary, version_ev, version_summary
from .sockets import SocketSurvey, socket_owner, socket_row
from .vocabulary import (
    CAUSE_CONNECTIVITY_LOST,
    CAUSE_LIVE,
    CAUSE_LIVE_PORT,
    CAUSE_SYNC,
    CAUSE_VERSION_RANGE,
    CAUSE_ZOMBIES_PRESENT,
    FAIL,
    FIX_CHURN,
    FIX_ID,
    FIX_LIVE,
    FIX_LIVE_PORT,
    FIX_REMOTE_SOCKETS,
    FIX_SYNC,
    FIX_ZOMBIE,
    MAX_SOCKET_ROWS,
    OK,
    RUNG_ACCOUNT_KIND,
    RUNG_ACCOUNTS,
    RUNG_CLIENT_ID,
    RUNG_CLOSE_WAIT,
    RUNG_CONNECTIVITY,
    RUNG_NEXT_ID,
    RUNG_SYNC,
    RUNG_VERSION,
    SKIP,
    WARN,
    Rung,
)


async def ready_rungs(attempt: Attempt, rungs: dict[str, Rung], diagnosis: list[str], *, first_id_refused: bool,
                       first: Attempt | None = None) -> Attempt:
    """nextValidId, managedAccounts and client id for a ready connection."""
    ev = next_id_ev(attempt)
    if first_id_refused and first is not None:
        ev["note"] = f"via fresh client id {attempt.client_id}; id {first.client_id} was refused"
        rungs[RUNG_NEXT_ID] = Rung(RUNG_NEXT_ID, WARN, ev, FIX_ID,
                                   f"{next_id_summary(attempt)}, but only with a fresh client id")
    else:
        rungs[RUNG_NEXT_ID] = Rung(RUNG_NEXT_ID, OK, ev, summary=next_id_summary(attempt))
    rungs[RUNG_ACCOUNTS] = Rung(RUNG_ACCOUNTS, OK, accounts_ev(attempt),
                                summary=f"accounts {accounts_text(attempt)}")
    rungs.setdefault(RUNG_CLIENT_ID, Rung(RUNG_CLIENT_ID, OK, {"client_id": attempt.client_id, "error_326": False},
                                          summary=f"client id {attempt.client_id} accepted (no error 326)"))
    return attempt


def version_rung(attempt: Attempt, diagnosis: list[str]) -> Rung:
    """OK, or WARN when the build's maximum is below the minimum of a client
    library installed here: that client cannot connect to this Gateway
    although doctor's own (wider) range can."""
    ev = version_ev(attempt)
    build_max = ev.get("build_max_server_version")
    too_new = [(name, low) for name, low in installed_client_floors().items()
               if build_max is not None and build_max < low]
    if not too_new:
        return Rung(RUNG_VERSION, OK, ev, summary=version_summary(attempt))
    lines = [f"the Gateway's maximum ({build_max}) is below {name}'s minimum ({low})" for name, low in too_new]
    ev["clients_out_of_range"] = {name: low for name, low in too_new}
    for line in lines:
        diagnosis.append(f"{CAUSE_VERSION_RANGE}: {line}: upgrade the Gateway or use an older client")
    return Rung(RUNG_VERSION, WARN, ev, CAUSES["version_range"].fix,
                f"{version_summary(attempt)}; {'; '.join(lines)}")


def installed_client_floors() -> dict[str, int]:
    """The lowest server version each client library installed here accepts
    (read from the library itself, never assumed): ib_async checks
    `Client.MinClientVersion` after the version reply (its client.py); the
    official ibapi offers MIN_CLIENT_VER.."""
    floors: dict[str, int] = {}
    with contextlib.suppress(Exception):  # not installed, or a layout we do not know: say nothing
        from ib_async.client import Client as IbAsyncClient

        floors["ib_async"] = int(IbAsyncClient.MinClientVersion)
    with contextlib.suppress(Exception):
        from ibapi import server_versions

        floors["ibapi"] = int(server_versions.MIN_CLIENT_VER)
    return floors


def connectivity_rung(attempt: Attempt, rungs: dict[str, Rung], diagnosis: list[str]) -> None:
    """1100 without a later 1101/1102: the API answers, but the Gateway has
    no connection to IB, so orders and data do not flow: not ready."""
    messages = list(attempt.client.messages)
    codes = [msg.code for msg in messages]
    ev = {"gateway_codes": codes, "farm_notices": [f"{msg.code} {msg.message}" for msg in messages
                                                   if 2100 <= msg.code < 2200]}
    lost = connectivity_lost(messages)
    if lost is None:
        rungs[RUNG_CONNECTIVITY] = Rung(RUNG_CONNECTIVITY, OK, ev,
                                        summary="no 1100 (connectivity lost) outstanding")
        return
    detail = connectivity_detail(lost)
    ev["connectivity_lost"] = detail
    rungs[RUNG_CONNECTIVITY] = Rung(RUNG_CONNECTIVITY, FAIL, ev, CAUSES["connectivity_lost"].fix,
                                    f"API up but IB connectivity lost: {detail}; not ready to trade")
    diagnosis.append(f"{CAUSE_CONNECTIVITY_LOST}: {detail}")


def sync_rung(sync: dict[str, Any], rungs: dict[str, Rung], diagnosis: list[str], timeout: float) -> None:
    missing = []
    if not sync.get("positions_end"):
        missing.append("positions (positionEnd)")
    if not sync.get("_download_ok"):
        which = ", ".join(sync.get("account_download_missing") or []) or "?"
        missing.append(f"account download (accountDownloadEnd for {which})")
    if not sync.get("executions_end"):
        missing.append("executions (execDetailsEnd)")
    ev = {k: v for k, v in sync.items() if not k.startswith("_")}
    ev["missing"] = missing
    if missing:
        rungs[RUNG_SYNC] = Rung(RUNG_SYNC, FAIL, ev, FIX_SYNC,
                                f"no end message within {timeout:g} s for: {'; '.join(missing)}")
        diagnosis.append(f"{CAUSE_SYNC}: {', '.join(x.split(' (')[0] for x in missing)} never ended")
    else:
        rungs[RUNG_SYNC] = Rung(RUNG_SYNC, OK, ev, summary=(
            f"positions ({ev.get('positions')}), account download ({ev.get('account_values')} values), "
            "executions: all ended"))


def account_kind_rung(attempt: Attempt, port: int, rungs: dict[str, Rung], diagnosis: list[str]) -> None:
    accounts = attempt.result.accounts if attempt.result is not None else []
    live = [a for a in accounts if not a.upper().startswith(PAPER_PREFIXES)]
    ev = {"accounts": redact_accounts(accounts), "paper": redact_accounts([a for a in accounts if a not in live]),
          "live": redact_accounts(live), "port": port, "live_port": LIVE_PORTS.get(port)}
    if live:
        rungs[RUNG_ACCOUNT_KIND] = Rung(
            RUNG_ACCOUNT_KIND, WARN, ev, FIX_LIVE,
            f"LIVE ACCOUNT: {', '.join(redact_accounts(live))} is not a paper account (DU/DF)"
            + (f"; port {port} is the {LIVE_PORTS[port]} port" if port in LIVE_PORTS else ""))
        diagnosis.append(f"{CAUSE_LIVE}: {', '.join(redact_accounts(live))}")
    elif port in LIVE_PORTS:
        rungs[RUNG_ACCOUNT_KIND] = Rung(RUNG_ACCOUNT_KIND, WARN, ev, FIX_LIVE_PORT,
                                        f"paper accounts, but port {port} is the {LIVE_PORTS[port]} port")
        diagnosis.append(f"{CAUSE_LIVE_PORT}: {port} ({LIVE_PORTS[port]})")
    else:
        rungs[RUNG_ACCOUNT_KIND] = Rung(RUNG_ACCOUNT_KIND, OK, ev,
                                        summary=f"paper: {', '.join(redact_accounts(accounts))}")


def close_wait_rung(survey: SocketSurvey, port: int, threshold: int, rungs: dict[str, Rung], diagnosis: list[str],
                     *, healthy_handshake: bool) -> None:
    if not survey.visible:
        rungs[RUNG_CLOSE_WAIT] = Rung(RUNG_CLOSE_WAIT, SKIP, {"visible": False, "reason": survey.reason},
                                      FIX_REMOTE_SOCKETS if "not this host" in survey.reason else "",
                                      f"not counted: {survey.reason}")
        return
    count = survey.count
    ev: dict[str, Any] = {
        "visible": True, "close_wait": count, "threshold": threshold, "transient_closed": survey.transient,
        "sockets": [socket_row(r) for r in survey.close_wait[:MAX_SOCKET_ROWS]],
        "owners": sorted({socket_owner(r) for r in survey.close_wait}),
        "listener": [socket_row(r) for r in survey.listeners], "established": survey.established,
        "conclusive": survey.conclusive_zero if count == 0 else True,
    }
    owners = f" owned by {', '.join(ev['owners'])}" if count else ""
    if count >= threshold:
        rungs[RUNG_CLOSE_WAIT] = Rung(RUNG_CLOSE_WAIT, FAIL, ev, FIX_ZOMBIE,
                                      f"{count} CLOSE_WAIT sockets on port {port}{owners} (threshold {threshold})")
        if healthy_handshake:
            rungs[RUNG_CLOSE_WAIT].remediation = FIX_CHURN  # the API answers: churn is the candidate
            diagnosis.append(f"{CAUSE_ZOMBIES_PRESENT}: {count}")
    elif count:
        rungs[RUNG_CLOSE_WAIT] = Rung(RUNG_CLOSE_WAIT, WARN, ev, FIX_CHURN.split(", then")[0],
                                      f"{count} CLOSE_WAIT socket(s) on port {port}{owners} (below {threshold})")
        if healthy_handshake:
            diagnosis.append(f"{CAUSE_ZOMBIES_PRESENT}: {count}")
    else:
        where = ""
        if not survey.conclusive_zero:
            where = (f" (but {survey.forwarder} listens in front of the Gateway: its own sockets are not visible "
                     "here)" if survey.forwarder else " (no listener visible on this port here: inconclusive)")
        rungs[RUNG_CLOSE_WAIT] = Rung(RUNG_CLOSE_WAIT, OK, ev, "",
                                      f"0 CLOSE_WAIT sockets on port {port}{where}")
