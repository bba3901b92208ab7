"""What the mock does with every request the official client can send.

Why a catalog: a client that sends a request a Gateway always answers, and
gets nothing back, waits for ever (ib_async's default request timeout is 0),
so a mock that "logs and ignores" turns a missing model into a hung test.
Every id of ibapi 10.50's OUT is listed here with one of three outcomes:

- modelled: a handler in the session or in requests_market.py answers;
- NO_REPLY: a real Gateway answers nothing (cancels, settings), so silence
  is the modelled answer;
- an error a real Gateway sends when it cannot serve the request, carrying
  the request id (market data not subscribed 354 / 10089, HMDS query error
  162, validation error 321; codes and texts per IBKR's API message codes,
  10167 before delayed ticks per wboayue/rust-ibapi#672; which code a
  Gateway picks for each unmodelled request is the mock's assumption). These
  are logged as unmodelled, and in strict
  mode (`ibgw mock serve --strict`) each one is a visible failure in the
  transcript and the log, and the error's text names the request as unmodelled.

Order messages (placeOrder, cancelOrder, reqGlobalCancel, exerciseOptions)
keep the session's refusal and are not in this table.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_SECURITY = (200, "No security definition has been found for the request")
HMDS_ERROR = 162
NOT_SUBSCRIBED = (354, "Requested market data is not subscribed.")
NEEDS_API_SUBSCRIPTION = (10089, "Requested market data requires additional subscription for API. See link in "
                                 "'Market Data Connections' dialog for more details.")
DELAYED_NOTICE = (10167, "Requested market data is not subscribed. Displaying delayed market data.")
DELAYED_DISABLED = (10168, "Requested market data is not subscribed. Delayed market data is not enabled.")
VALIDATION = 321


@dataclass(frozen=True)
class Fallback:
    """An unmodelled request's answer: an error (code, text) with the
    request's id, or nothing when code is 0 (a real Gateway sends nothing)."""

    code: int
    text: str = ""

    @property
    def silent(self) -> bool:
        return self.code == 0


NO_REPLY = Fallback(0)


def _unsupported(what: str) -> Fallback:
    return Fallback(VALIDATION, f"Error validating request.-'bX' : cause - {what} is not available "
                                "through this Gateway")


# Requests a real Gateway never answers (the reply, if any, is the absence
# of further data): cancels of subscriptions and settings.
SILENT: dict[int, str] = {
    2: "cancelMktData", 11: "cancelMktDepth", 13: "cancelNewsBulletins", 14: "setServerLogLevel",
    12: "reqNewsBulletins",  # bulletins arrive only when IB publishes one
    15: "reqAutoOpenOrders", 23: "cancelScannerSubscription", 25: "cancelHistoricalData",
    51: "cancelRealTimeBars", 56: "cancelCalculateImpliedVolatility", 57: "cancelCalculateOptionPrice",
    59: "reqMarketDataType", 63: "cancelAccountSummary", 64: "cancelPositions", 70: "unsubscribeFromGroupEvents",
    75: "cancelPositionsMulti", 77: "cancelAccountUpdatesMulti", 89: "cancelHistogramData",
    90: "cancelHeadTimeStamp", 93: "cancelPnL", 95: "cancelPnLSingle", 98: "cancelTickByTickData",
    101: "cancelWshMetaData", 103: "cancelWshEventData", 106: "cancelContractData", 107: "cancelHistoricalTicks",
}

# Requests the mock does not model, with the error a real Gateway sends
# when the account cannot have the data (paper accounts without the
# subscription or permission).
UNMODELLED: dict[int, Fallback] = {
    10: Fallback(*NOT_SUBSCRIBED),  # reqMktDepth: no L2 subscription
    50: Fallback(*NOT_SUBSCRIBED),  # reqRealTimeBars
    54: Fallback(*NOT_SUBSCRIBED),  # calculateImpliedVolatility needs the option's market data
    55: Fallback(*NOT_SUBSCRIBED),  # calculateOptionPrice
    97: Fallback(*NEEDS_API_SUBSCRIPTION),  # reqTickByTickData
    88: Fallback(HMDS_ERROR, "Historical Market Data Service error message:No market data permissions."),
    96: Fallback(HMDS_ERROR, "Historical Market Data Service error message:No market data permissions."),
    18: _unsupported("FA data operations for a non-FA account"),
    19: _unsupported("FA data operations for a non-FA account"),
    22: _unsupported("market scanner subscriptions"),
    65: _unsupported("API verification"), 66: _unsupported("API verification"),
    72: _unsupported("API verification"), 73: _unsupported("API verification"),
    67: _unsupported("display groups"), 68: _unsupported("display groups"), 69: _unsupported("display groups"),
    84: _unsupported("news articles"), 86: _unsupported("historical news"),
    100: _unsupported("Wall Street Horizon data"), 102: _unsupported("Wall Street Horizon data"),
    108: _unsupported("API configuration requests"), 109: _unsupported("API configuration updates"),
}

# Requests that change an account: refused by the session by order id.
ORDER_IDS = frozenset({3, 4, 21, 58})


def fallback_for(out_id: int) -> Fallback | None:
    """The fallback for an id, None when the id must be modelled elsewhere."""
    if out_id in SILENT:
        return NO_REPLY
    return UNMODELLED.get(out_id)


def strict_error(name: str, code: int) -> tuple[int, str]:
    """What a client gets in strict mode: the fallback's code (so a client
    ends the request as it would on a real Gateway) with a text that names
    the request as unmodelled."""
    return code, f"{name} is not modelled by the mock Gateway (strict)"
