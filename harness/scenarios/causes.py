"""The one table of causes: what each observed signature means, what to do,
and which public report says a real Gateway does it.

Why one table: probe, doctor, the evidence categories and the clients'
phase texts each used to carry their own wording, and they drifted apart
(probe said "2FA" where doctor said "zombie" for the same bytes). A verdict
that names a cause now names a row here, and every row carries its source:
a public `repo#issue` (or document) it reproduces, or the plain words
"field reports only" when no public report backs it. tests/scenarios/test_causes.py
fails if a row lacks one.

`restart_fixes` says whether restarting the Gateway is a known cure, so a
report can tell "restart and move on" from "restarting will not help".
"""

from __future__ import annotations

from dataclasses import dataclass

FIELD_REPORTS_ONLY = "field reports only"


@dataclass(frozen=True)
class Cause:
    key: str  # stable id used in JSON output and tests
    title: str  # the one line doctor's Diagnosis and probe's FAILED line print
    meaning: str  # what the observed signature means on a real Gateway
    fix: str  # what to do about it
    source: str  # public repo#issue / document, or FIELD_REPORTS_ONLY
    restart_fixes: bool = False  # a Gateway restart is a known cure

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "title": self.title, "meaning": self.meaning, "fix": self.fix,
                "source": self.source, "restart_fixes": self.restart_fixes}


_PORTS = "Gateway 4001 live / 4002 paper, TWS 7496 / 7497"

CAUSES: dict[str, Cause] = {c.key: c for c in (
    Cause("host_unresolved", "cannot resolve host",
          "the host name has no address here, so no connect was tried",
          "check the host name and this host's DNS settings",
          "resolver behaviour (getaddrinfo); not a Gateway report"),
    Cause("down", "Gateway down / wrong port / API disabled / mid-restart / still logging in or waiting for 2FA",
          "nothing is listening: the Gateway is down or restarting, the API port is wrong, or "
          "'Enable ActiveX and Socket Clients' is off; while IBC logs in (or waits for 2FA) the Gateway's "
          "listener is not up yet, so a direct connect is refused",
          "start or restart the Gateway (if it is mid-restart, wait up to 90 s and rerun); check the port "
          f"({_PORTS}) and that API > Settings > 'Enable ActiveX and Socket Clients' is on",
          "gnzsnz/ib-gateway-docker#119 (refused while logging in); manhinhang/ib-gateway-docker#157 "
          "(port refused 60-90 s during an auto-restart)", restart_fixes=True),
    Cause("unreachable", "host unreachable or a firewall drops the connection",
          "the TCP connect got no answer at all: a firewall drops it or the host is unreachable",
          "check the host name, the network path and firewalls between this host and the Gateway",
          "general TCP behaviour (a dropped SYN); not a Gateway report"),
    Cause("forwarder", "socket forwarder up with no Gateway behind it (the Gateway down, logging in or waiting for "
          "2FA: gnzsnz/ib-gateway-docker#119), or untrusted client address",
          "TCP was accepted and closed with no version reply: a forwarder (socat, docker-proxy) accepts while "
          "the Gateway behind it is not listening (still logging in, waiting for 2FA, restarting), or the "
          "Gateway closed a client whose address is not in Trusted IPs",
          "check the Gateway behind the forwarder (socat / docker-proxy) is up and logged in; check "
          "API > Settings > Trusted IPs includes this host (or run doctor on the Gateway's host)",
          "gnzsnz/ib-gateway-docker#119 (socat: Connection refused behind it); extrange/ibkr-docker#80; "
          "wboayue/rust-ibapi#368 (early eof); ib-controller/ib-controller#197 (untrusted address closed)",
          restart_fixes=False),
    Cause("client_cap", "the Gateway's API client limit (32) is reached",
          "a Gateway serves at most 32 API clients at once; what the 33rd sees is not public (the mock "
          "accepts and closes)",
          "close idle API clients (the established connections on the port are listed) or restart the "
          "clients that leak connections",
          "IBKR TWS API documentation (\"up to 32 client applications\"); the 33rd client's signature: "
          f"{FIELD_REPORTS_ONLY}"),
    Cause("version_range", "the Gateway's server version is outside the client's range",
          "the Gateway answered the handshake with its own maximum server version and the client rejected "
          "it: the build is older than the client's minimum",
          "upgrade the Gateway (or its image) to a build the client supports, or use an older client "
          "release whose range includes the Gateway's version",
          "ib-api-reloaded/ib_async client.py (MinClientVersion check after the reply); official "
          "EClientSocket 506 'Unsupported version'; wboayue/rust-ibapi#492, #527 (src/connection/common.rs "
          "checks its floor after the reply)"),
    Cause("non_tws", "the port speaks another protocol, not the TWS API: wrong port",
          "the first bytes on the port are another protocol's greeting or error (HTTP, TLS, SSH, VNC), so "
          "the client is pointed at the wrong service",
          f"point the client at the Gateway's API port ({_PORTS}); the port named here belongs to another "
          "service (a web UI, noVNC/VNC, SSH, a TLS endpoint)",
          "protocol greetings per RFC 9112 (HTTP), RFC 8446 (TLS), RFC 4253 section 4.2 (SSH), RFC 6143 "
          f"section 7.1.1 (VNC RFB); that users point clients at such ports: {FIELD_REPORTS_ONLY}"),
    # Silence after accept is not a login or 2FA in progress: the Java listener
    # is not up until login finishes (direct: refused; behind socat: accept
    # then close, gnzsnz/ib-gateway-docker#119). The key is kept for callers.
    Cause("not_logged_in", "accepted, then silence: an accept-incoming-connection dialog is waiting (untrusted "
          "client address: ib-api-reloaded/ib_async#18, IbcAlpha/IBC#195) or the API is wedged",
          "TCP accepted but no version reply: an accept-incoming-connection dialog (an untrusted client "
          "address) leaves the client waiting, or the Gateway's API is wedged",
          "open the Gateway (VNC/UI or its log): answer a pending incoming-connection dialog and add this host "
          "to API > Settings > Trusted IPs (IBC: AcceptIncomingConnectionAction); if no dialog is showing, the "
          "API is wedged or red: restart the Gateway (IBC RESTART)",
          "ib-api-reloaded/ib_async#18 (dialog: client times out); IbcAlpha/IBC#195",
          restart_fixes=True),
    Cause("red", "API red after a disconnect (restart needed; field reports only)",
          "after a client's explicit disconnect the API layer stopped answering new handshakes",
          "restart the Gateway",
          f"{FIELD_REPORTS_ONLY} (nearest public: erdewit/ib_insync#172, ib-api-reloaded/ib_async#152)",
          restart_fixes=True),
    # CLOSE_WAIT piling up while the API is silent is the wedge's signature in
    # every public report, so the zombie verdict names the wedge.
    Cause("wedge", "the Gateway's API is wedged: restart it (IBC RESTART); client churn is not shown to be the cause",
          "the port accepts TCP but nothing answers: the Gateway's API thread is wedged, so its listener stops "
          "accepting (the listen socket's Recv-Q grows) or accepts without reading, and CLOSE_WAIT sockets pile "
          "up as the result, even for clients that disconnect cleanly",
          "restart the Gateway (IBC RESTART, or its container): its API thread is wedged and the CLOSE_WAIT "
          "sockets are clients that gave up (gnzsnz/ib-gateway-docker#336, "
          "nautechsystems/nautilus_trader#4796); stopping client churn is not shown to help",
          "gnzsnz/ib-gateway-docker#336 (10.41.1d); nautechsystems/nautilus_trader#4796 (10.41.1c, listener "
          "Recv-Q grows); erdewit/ib_insync#386", restart_fixes=True),
    Cause("zombies_present", "CLOSE_WAIT sockets are accumulating on the port while the API answers (a client "
          "that reconnects in a loop is a candidate)",
          "the API still answers, but CLOSE_WAIT sockets the Gateway never closed are on the port",
          "stop the churn (find the client that connects and disconnects in a loop: the remote addresses "
          "below), then restart the Gateway to clear the CLOSE_WAIT sockets",
          "field reports only (client churn as the cause); the public reports (gnzsnz/ib-gateway-docker#336, "
          "erdewit/ib_insync#386) show CLOSE_WAIT piling up behind a wedged API instead", restart_fixes=True),
    Cause("id_stuck", "client id in use or stuck after its client left",
          "the Gateway refused this client id (error 326, or a close after startApi) while a fresh id works",
          "use another client id (probe / doctor: --client-id); if no other client holds this one, the "
          "Gateway kept it after its client left: wait for it to be released or restart the Gateway",
          "ib-api-reloaded/ib_async#152; erdewit/ib_insync#106; ib-api-reloaded/ib_async#143 (10.30.1)",
          restart_fixes=True),
    Cause("closed_after_start", "the Gateway closed the connection right after startApi with no error message "
          "(no 326, so the id was not refused; ib_async words this 'clientId N already in use?'; seen on "
          "10.30.1: ib-api-reloaded/ib_async#143)",
          "a bare close after startApi, with no error 326: ib_async reports any early close as 'clientId N "
          "already in use?'",
          "retry with another client id; if a fresh id is closed too, restart the Gateway",
          "ib-api-reloaded/ib_async#143 (10.30.1)", restart_fixes=True),
    Cause("api_not_ready", "API not ready: nextValidId never came (API layer stalled after login or a disconnect)",
          "the version handshake completed but nextValidId never came, even for a fresh client id",
          "restart the Gateway's API (or the Gateway); if it persists after a restart, look in the Gateway "
          "log for a pending dialog",
          "heshiming/ibga#24 (10.41: no nextValidId); gnzsnz/ib-gateway-docker#336", restart_fixes=True),
    Cause("login_incomplete", "login incomplete: managedAccounts never listed an account",
          "nextValidId came, but managedAccounts listed no account: the login is incomplete",
          "wait for the Gateway to finish logging in and rerun; look for a pending dialog in the Gateway UI",
          f"{FIELD_REPORTS_ONLY} (ib_async waits for a non-empty managedAccounts: its client.py)"),
    Cause("sync", "startup sync incomplete",
          "a start-up request never got its end message (positions, account download, executions)",
          "a start-up request never got its end message: restart the Gateway; clients can skip that request "
          "at start-up (ib_async: fetchFields) until it is fixed",
          "ib-api-reloaded/ib_async#82, #84; erdewit/ib_insync#638, #303", restart_fixes=True),
    Cause("transient", "the first handshake went unanswered, a second one succeeded (Gateway was busy or "
          "finishing login)",
          "one handshake went unanswered and the next succeeded",
          "if this repeats, the Gateway is overloaded or restarting: check its log",
          "QuantConnect/Lean.Brokerages.InteractiveBrokers#151 (start-up race)"),
    Cause("connectivity_lost", "API up but IB connectivity lost: not ready to trade",
          "the Gateway's API answers, but it reported error 1100 (connectivity between IB and the Gateway "
          "lost) and no 1101/1102 (restored) since: market data and orders do not reach IB",
          "wait for 1102 (restored; nightly resets last minutes) and rerun; if it persists, check the "
          "Gateway's internet connection and whether another session logged in with the same user",
          "IbcAlpha/IBC#251, #143 (nightly reset: 1100 then 1102); ib-api-reloaded/ib_async#6 (1100 from a "
          "competing session)"),
    Cause("ping_unanswered", "the API did not answer a request after start-up",
          "the handshake completed but the API did not answer reqCurrentTime: the API layer stalled "
          "right after start-up",
          "retry; if it persists the API layer is hung: restart the Gateway",
          f"{FIELD_REPORTS_ONLY} (nearest public: erdewit/ib_insync#172, requests hang until restart)",
          restart_fixes=True),
    Cause("client_sync", "the client did not finish its own start-up synchronisation",
          "the client library's own start-up requests did not complete in time",
          "retry with a longer --timeout, or probe with --client raw to see which start-up reply is missing",
          "ib-api-reloaded/ib_async#82, #84 (start-up requests time out)"),
    # A trading app's start-up steps (harness/scenarios/app_startup.py): the Gateway's refusals.
    Cause("no_security_definition", "no security definition (error 200): the contract did not resolve",
          "the Gateway answered the contract lookup (or a data request for it) with error 200: no contract "
          "matches the description, or more than one does",
          "check symbol, secType, exchange, currency and expiry (a stock: SMART plus primaryExchange; a future: "
          "the contract month and multiplier); qualify by conId once known",
          "deephaven-examples/deephaven-ib#33 (ambiguous description: 200); pilwon/node-ib#25; the code's "
          "text per IBKR's API message codes documentation"),
    Cause("data_farm_broken", "a data farm is down (2103/2105 broken, 2107/2108 inactive)",
          "the Gateway reported the market-data (2103) or HMDS (2105) farm connection broken, or inactive "
          "(2107/2108), and requests that farm serves error (162) or end without data",
          "wait for the farm's OK notice (2104/2106) and retry; if it stays down, restart the Gateway or check "
          "IB's system status",
          "IbcAlpha/IBC#251 (2103/2105 farm broken around the nightly reset)", restart_fixes=True),
    Cause("hmds_pacing", "historical data pacing violation (162)",
          "HMDS refused a historical-data request with 162 'pacing violation': too many requests in a window",
          "space the requests out (IBKR's historical-data limits: identical requests within 15 s, 60 in 10 "
          "minutes) and retry after a pause",
          f"{FIELD_REPORTS_ONLY}: the 162 pacing text per IBKR's historical-data limits documentation; no "
          "public capture"),
    Cause("hmds_refused", "historical data refused (162 HMDS query error)",
          "HMDS answered 162 for another reason; candidates: no data in the span (a weekend, outside RTH), no "
          "permission for the data, a field it rejects (whatToShow, bar size, duration), an HMDS farm going "
          "down",
          "read the 162's text: fix the request field it names, widen the span to a trading session, or "
          "check the account's data permissions",
          f"{FIELD_REPORTS_ONLY} (162 texts per IBKR's API message codes documentation)"),
    Cause("market_data_not_subscribed", "market data not subscribed (354/10089/10168; 10167 precedes delayed data)",
          "the Gateway refused live market data: 354 not subscribed, 10089 the API needs its own subscription, "
          "10168 delayed data not enabled; 10167 says delayed data follows instead",
          "request delayed data (reqMarketDataType 3) or add the subscription (and its API entitlement) in "
          "Account Management",
          "brndnmtthws/thetagang#175 (354); erdewit/ib_insync#198 (10168); wboayue/rust-ibapi#672 (10167 "
          "before delayed ticks)"),
    Cause("startup_unanswered", "a start-up request got no answer",
          "a start-up request (contract details, bars, snapshot, PnL) got neither data nor an error within "
          "the timeout, or ended without data",
          "rerun with a longer --timeout; check the farm notices (2103-2108) at connect; compare the request "
          "with the reference client's (ibgw doctor --client)",
          f"{FIELD_REPORTS_ONLY} (the app that hangs at its first qualifyContracts)"),
    Cause("live", "a LIVE (non-paper) account is logged in",
          "an account that is not a paper account (DU/DF prefix) is logged in",
          "this Gateway is logged in to a LIVE account: make sure that is intended; test and debug against a "
          "paper login (DU.../DF... accounts, port 4002 / 7497)",
          "safety check, not a failure: IBKR paper account ids start DU/DF (erdewit/ib_insync#416)"),
    Cause("live_port", "the port is a live-trading port",
          "the port is a live-trading default (4001 / 7496)",
          "the port is the live-trading default: check you meant the live Gateway",
          "safety check, not a failure: IBKR's default ports (Gateway 4001 live / 4002 paper, TWS 7496 / 7497)"),
)}


def cause(key: str) -> Cause:
    """The row for `key`; KeyError names the valid keys."""
    try:
        return CAUSES[key]
    except KeyError:
        raise KeyError(f"unknown cause {key!r}; valid: {', '.join(sorted(CAUSES))}") from None


def cause_for_text(text: str) -> Cause | None:
    """The row whose title starts a diagnosis line ("TITLE" or "TITLE: detail")."""
    for row in sorted(CAUSES.values(), key=lambda c: -len(c.title)):
        if text == row.title or text.startswith((row.title + ":", row.title + " (", row.title + " ")):
            return row
    return None


__all__ = ["CAUSES", "FIELD_REPORTS_ONLY", "Cause", "cause", "cause_for_text"]
