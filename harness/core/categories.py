"""Failure categories: the cause a person recognises, derived from evidence.

Why one module: the category of a failed scenario is computed here, once,
from what the evidence carries (the failing phase, the Gateway's error
codes, the CLOSE_WAIT counts, the named checks), never from fault names or
free text a test planted. The same names feed two places that must agree:

* the assertion message of a scenario test (Evidence.summary_line() starts
  with ``[<category>]``), and
* ``categories.json`` in the allure results, whose regexes look for exactly
  that prefix.

So a report's "Categories" tab groups failures by cause, and the plain
summary line a developer sees in a CI log names the same cause.

Allure matching (Allure 3's core-api ``matchCategory``, which the awesome
report uses): rules in order, the first whose statuses include the result's
status and whose ``messageRegex`` finds a match (JavaScript ``RegExp.test``:
a search) wins. Allure 2 requires the regex to match the whole message, so
each regex is wrapped in ``[\\s\\S]*`` on both sides and works in both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .constants import CLIENT_ID_IN_USE

# The categories, in the order Allure tries them (first match wins).
API_WEDGED = "API wedged"
HANDSHAKE_UNANSWERED = "handshake unanswered"
API_NOT_READY = "API not ready"
STARTUP_SYNC_INCOMPLETE = "startup sync incomplete"
CLIENT_ID_STUCK = "client id stuck"
ZOMBIE_SOCKETS = "zombie sockets"
GATEWAY_UNREACHABLE = "Gateway unreachable"
BUILD_TOO_OLD = "build too old"
HEALTH_LOST_OVER_TIME = "connection health lost over time"
NO_SECURITY_DEFINITION = "no security definition"
DATA_FARM_BROKEN = "data farm broken"
PACING_VIOLATION = "pacing violation"
HISTORICAL_DATA_REFUSED = "historical data refused"
MARKET_DATA_NOT_SUBSCRIBED = "market data not subscribed"
STARTUP_REQUEST_UNANSWERED = "start-up request unanswered"
HARNESS_ERROR = "harness error"
RUN_CONFIGURATION = "run configuration"
UNCLASSIFIED = "unclassified"

CATEGORY_TEXT: dict[str, str] = {
    API_WEDGED: "the Gateway's API thread is wedged: its listener stops accepting (the accept queue grows) or "
                "accepts and never reads, and CLOSE_WAIT piles up as the result (gnzsnz/ib-gateway-docker#336, "
                "nautechsystems/nautilus_trader#4796): restart the Gateway",
    GATEWAY_UNREACHABLE: "nothing accepted the TCP connect: the Gateway is down, restarting, or the port is wrong",
    BUILD_TOO_OLD: "the Gateway's server version is below what the client needs: the build is retired or too old",
    HANDSHAKE_UNANSWERED: "TCP accepted, the version handshake was not answered: a forwarder in front of a "
                          "Gateway that is down or logging in (2FA), an incoming-connection dialog, a wedged "
                          "API, the connection cap",
    CLIENT_ID_STUCK: "the Gateway still holds the client id (error 326) of a client that left",
    ZOMBIE_SOCKETS: "CLOSE_WAIT sockets pile up on the Gateway port: it is not closing finished connections",
    API_NOT_READY: "the handshake completed but nextValidId or managedAccounts never came",
    STARTUP_SYNC_INCOMPLETE: "the API was ready but a start-up request never got its end message",
    NO_SECURITY_DEFINITION: "a start-up step got error 200: the contract did not resolve (wrong symbol, "
                            "exchange, currency or expiry, or an ambiguous description; the sec-def farm may "
                            "be down) (deephaven-examples/deephaven-ib#33, pilwon/node-ib#25)",
    DATA_FARM_BROKEN: "a data farm is down: 2103/2105 farm connection broken or 2107/2108 inactive, and the "
                      "request it serves errors or ends without data (IbcAlpha/IBC#251)",
    PACING_VIOLATION: "historical data refused with 162 'pacing violation': too many requests in a window "
                      "(IBKR's historical-data limits; the 162 text: field reports only)",
    HISTORICAL_DATA_REFUSED: "historical data refused with another 162 (HMDS query error); candidates: no data "
                             "for the span (a weekend, outside RTH), no permission for the data, a request "
                             "field HMDS rejects, an HMDS farm going down (162 texts: IBKR's API message "
                             "codes; field reports only)",
    MARKET_DATA_NOT_SUBSCRIBED: "market data refused: 354 not subscribed, 10089 needs an API subscription, "
                                "10168 delayed data not enabled; 10167 precedes delayed data "
                                "(brndnmtthws/thetagang#175, erdewit/ib_insync#198, wboayue/rust-ibapi#672)",
    STARTUP_REQUEST_UNANSWERED: "a start-up request (qualify, bars, snapshot, PnL) got no answer and no error, "
                                "or an answer without data; candidates: a farm that is down or slow, a request "
                                "the Gateway ignores, a client that waits on the wrong event (field reports "
                                "only)",
    HEALTH_LOST_OVER_TIME: "during a soak a connection did not recover in time, pings went unanswered, or "
                           "CLOSE_WAIT / memory did not return to baseline",
    HARNESS_ERROR: "the harness itself failed (an exception in a test or a worker), not the Gateway",
    RUN_CONFIGURATION: "the run could not judge the Gateway: a soak ended before a fault's recovery bound "
                       "had passed (lengthen the run or move the fault earlier)",
}

# The rows of the one table of causes (harness/scenarios/causes.py) each
# category groups: what it means, its fix and its public source live there.
CATEGORY_CAUSES: dict[str, tuple[str, ...]] = {
    GATEWAY_UNREACHABLE: ("down", "unreachable", "host_unresolved"),
    BUILD_TOO_OLD: ("version_range",),
    API_WEDGED: ("wedge",),
    HANDSHAKE_UNANSWERED: ("not_logged_in", "forwarder", "client_cap", "non_tws", "red"),
    CLIENT_ID_STUCK: ("id_stuck",),
    ZOMBIE_SOCKETS: ("zombies_present",),
    API_NOT_READY: ("api_not_ready", "closed_after_start", "login_incomplete", "ping_unanswered"),
    STARTUP_SYNC_INCOMPLETE: ("sync", "client_sync"),
    HEALTH_LOST_OVER_TIME: ("connectivity_lost", "ping_unanswered"),
    NO_SECURITY_DEFINITION: ("no_security_definition",),
    DATA_FARM_BROKEN: ("data_farm_broken",),
    PACING_VIOLATION: ("hmds_pacing",),
    HISTORICAL_DATA_REFUSED: ("hmds_refused", "data_farm_broken", "hmds_pacing"),
    MARKET_DATA_NOT_SUBSCRIBED: ("market_data_not_subscribed",),
    STARTUP_REQUEST_UNANSWERED: ("startup_unanswered", "data_farm_broken"),
}

# The start-up steps (harness/clients/startup.py STEPS), as strings for the same reason as the phases below.
_STARTUP_STEPS = frozenset({"qualify", "historical_bars", "snapshot", "pnl"})
_FARM_BROKEN_CODES = frozenset({2103, 2105, 2107, 2108})
_MARKET_DATA_CODES = frozenset({354, 10089, 10167, 10168})
_ERROR_CODE_RE = re.compile(r"\berror (\d+)\b")

# Phases as the clients and scenarios name them (harness.clients.base and
# the scenarios); repeated here as strings so this module stays free of the
# client layer's imports.
_PHASE_CATEGORY: dict[str, str] = {
    "tcp_connect": GATEWAY_UNREACHABLE,
    "server_version": HANDSHAKE_UNANSWERED,
    "next_valid_id": API_NOT_READY,
    "managed_accounts": API_NOT_READY,
    "ping": API_NOT_READY,
    "first_account_value": STARTUP_SYNC_INCOMPLETE,
    "account_sync": STARTUP_SYNC_INCOMPLETE,
    "api_ready": STARTUP_SYNC_INCOMPLETE,
    "close_wait": ZOMBIE_SOCKETS,
    "harness": HARNESS_ERROR,
    "soak": HEALTH_LOST_OVER_TIME,
    "soak configuration": RUN_CONFIGURATION,  # harness.scenarios.soak.CONFIG_PHASE
}


# What a too-old build leaves behind: the mock's close cause in the
# Gateway-side transcript, ib_async's own disconnect text, IBKR's
# "Version no longer supported" message (field report waytrade#9).
# The version-range wording the raw and ib_async adapters share
# (clients/raw.py version_out_of_range) counts too.
_TOO_OLD_RE = re.compile(r"needs server version >=|version must be >=|no longer supported|"
                         r"maximum server version \(\d+\) is below", re.IGNORECASE)


def prefix(category: str) -> str:
    """The marker an assertion message starts with."""
    return f"[{category}]"


def categorize(evidence: Mapping[str, Any]) -> str | None:
    """The category of a failed evidence record (Evidence.to_dict() or the
    JSON file), None when it passed. Reads only recorded facts."""
    if evidence.get("outcome") == "passed":
        return None
    phase = evidence.get("failed_phase")
    runs = (evidence.get("details") or {}).get("runs")
    if isinstance(runs, list) and runs:
        return _categorize_runs(evidence, runs)
    if phase == "harness":
        return HARNESS_ERROR
    if _client_id_in_use(_codes(evidence), evidence.get("cause")):
        return CLIENT_ID_STUCK
    if phase in ("server_version", "tcp_connect") and _too_old(evidence):
        return BUILD_TOO_OLD
    if phase in _STARTUP_STEPS:
        return _startup_category(evidence, str(phase))
    if phase in _PHASE_CATEGORY:
        return _PHASE_CATEGORY[phase]
    checks = evidence.get("checks") or {}
    if checks and not all(checks.values()):
        return STARTUP_SYNC_INCOMPLETE
    return UNCLASSIFIED


def _startup_row(evidence: Mapping[str, Any], step: str) -> Mapping[str, Any]:
    """The failed step's record: the start-up scenario's steps, or the user's
    side of the gateway-or-code verdict's side-by-side table."""
    details = evidence.get("details") or {}
    row = (details.get("steps") or {}).get(step)
    if isinstance(row, Mapping):
        return row
    for entry in details.get("startup_steps") or []:
        if isinstance(entry, Mapping) and entry.get("name") == step and isinstance(entry.get("user"), Mapping):
            return entry["user"]
    return {}


def _startup_category(evidence: Mapping[str, Any], step: str) -> str:
    """A start-up step's failure: by the Gateway's error code first, then its
    text, then the farm notices the connection carried."""
    row = _startup_row(evidence, step)
    text = f"{row.get('cause') or ''} {evidence.get('cause') or ''}"
    code = int(row.get("code") or 0)
    if not code:
        found = _ERROR_CODE_RE.search(text)
        code = int(found.group(1)) if found else 0
    lowered = text.lower()
    if code == 200:
        return NO_SECURITY_DEFINITION
    if code == 162 and "pacing violation" in lowered:
        return PACING_VIOLATION
    if code in _FARM_BROKEN_CODES or "farm connection is broken" in lowered:
        return DATA_FARM_BROKEN
    if code == 162:
        return HISTORICAL_DATA_REFUSED
    if code in _MARKET_DATA_CODES:
        return MARKET_DATA_NOT_SUBSCRIBED
    if code:
        return UNCLASSIFIED
    if set(_codes(evidence)) & _FARM_BROKEN_CODES:  # no answer, and the farm said it was down
        return DATA_FARM_BROKEN
    return STARTUP_REQUEST_UNANSWERED


def _categorize_runs(evidence: Mapping[str, Any], runs: list[dict[str, Any]]) -> str:
    """Consecutive-run evidence (the zombie scenario): the socket counts
    first, then the first failed run's phase and codes."""
    # The listener's own queues showed the wedge (scenarios/listener.py, recorded by the zombie
    # scenario): that names it, whatever the CLOSE_WAIT count did.
    if (evidence.get("details") or {}).get("wedge") or any(r.get("wedge") for r in runs):
        return API_WEDGED
    m = evidence.get("measurements") or {}
    baseline = m.get("close_wait_baseline_count", 0)
    # Sockets still in CLOSE_WAIT after the last run: a spike that drained
    # by the end is a slow close (a loaded machine), not a leak.
    if m.get("close_wait_final_count", baseline) > baseline:
        return ZOMBIE_SOCKETS
    bad = next((r for r in runs if not r.get("ok")), None)
    if bad is None:
        return UNCLASSIFIED
    if bad.get("failed_phase") == "next_valid_id" and _client_id_in_use([], bad.get("cause")):
        return CLIENT_ID_STUCK
    return _PHASE_CATEGORY.get(bad.get("failed_phase") or "", UNCLASSIFIED)


def _codes(evidence: Mapping[str, Any]) -> list[int]:
    messages = (evidence.get("connect") or {}).get("messages") or []
    return [int(msg["code"]) for msg in messages if isinstance(msg, Mapping) and "code" in msg]


def _client_id_in_use(codes: Iterable[int], cause: Any) -> bool:
    # Clients report error 326 as a message (codes) or inside the cause
    # their connect failed with ("... 326 ... client id is already in use").
    return CLIENT_ID_IN_USE in codes or bool(re.search(r"\b326\b", str(cause or "")))


def _too_old(evidence: Mapping[str, Any]) -> bool:
    client = evidence.get("client") or {}
    version, minimum = evidence.get("server_version"), client.get("min_version")
    if isinstance(version, int) and isinstance(minimum, int) and version < minimum:
        return True
    closed = [line for line in (evidence.get("transcript") or "").splitlines() if line.startswith("# closed:")]
    return any(_TOO_OLD_RE.search(text) for text in [*closed, str(evidence.get("cause") or "")])


# ------------------------------------------------------------------ categories.json


def _message_regex(category: str) -> str:
    # Only the brackets need escaping (names are letters and spaces); no
    # Python-only escapes, so JavaScript and Java read the same pattern.
    marker = prefix(category).replace("[", r"\[").replace("]", r"\]")
    return r"[\s\S]*" + marker + r"[\s\S]*"


def categories_json() -> list[dict[str, Any]]:
    """The rules for the allure results' categories.json (Allure 2 and 3)."""
    rules: list[dict[str, Any]] = [
        {"name": name, "matchedStatuses": ["failed", "broken"], "messageRegex": _message_regex(name),
         "description": text}
        for name, text in CATEGORY_TEXT.items()
    ]
    # A broken test without the prefix: the Gateway never came up for the
    # session (a connection refused in set-up) or the harness raised.
    rules.append({"name": GATEWAY_UNREACHABLE, "matchedStatuses": ["broken"],
                  "traceRegex": r"[\s\S]*ConnectionRefusedError[\s\S]*"})
    rules.append({"name": HARNESS_ERROR, "matchedStatuses": ["broken"]})
    return rules


def match_category(rules: list[dict[str, Any]], status: str, message: str | None,
                   trace: str | None = None) -> str | None:
    """Apply categories.json to one result the way Allure 3 does: rules with
    the same name merge into the first one's place; the first category with
    a matcher whose statuses include the status and whose regexes find a
    match (a search, as JavaScript's RegExp.test) wins."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        merged.setdefault(str(rule["name"]), []).append(rule)
    for name, matchers in merged.items():
        if any(_matches(rule, status, message, trace) for rule in matchers):
            return name
    return None


def _matches(rule: Mapping[str, Any], status: str, message: str | None, trace: str | None) -> bool:
    if "matchedStatuses" in rule and status not in rule["matchedStatuses"]:
        return False
    if "messageRegex" in rule and not re.search(rule["messageRegex"], message or ""):
        return False
    return not ("traceRegex" in rule and not re.search(rule["traceRegex"], trace or ""))


__all__ = [
    "API_NOT_READY", "API_WEDGED", "BUILD_TOO_OLD", "HEALTH_LOST_OVER_TIME", "CATEGORY_CAUSES", "CATEGORY_TEXT", "CLIENT_ID_STUCK", "GATEWAY_UNREACHABLE",
    "DATA_FARM_BROKEN", "HISTORICAL_DATA_REFUSED", "MARKET_DATA_NOT_SUBSCRIBED", "NO_SECURITY_DEFINITION",
    "PACING_VIOLATION", "STARTUP_REQUEST_UNANSWERED",
    "HANDSHAKE_UNANSWERED", "HARNESS_ERROR", "RUN_CONFIGURATION", "STARTUP_SYNC_INCOMPLETE", "UNCLASSIFIED", "ZOMBIE_SOCKETS",
    "categories_json", "categorize", "match_category", "prefix",
]
