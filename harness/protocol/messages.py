"""Message ids, names and version-aware layouts of the text protocol (server versions 100..200).

Each encoder returns the field list of one message (id first); framing is
framing.py's job. Layouts follow the official client's decoder and
ib_async's decoder, which both check field counts strictly: one extra or
missing field and the callback is silently dropped. The server-version
argument is therefore explicit on every encoder whose layout changed
between 157 and 200.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from .errors import ProtocolError
from .framing import Field, message_id
from .versions import (
    ADVANCED_ORDER_REJECT,
    ERROR_TIME,
    PARAMETRIZED_DAYS_OF_EXECUTIONS,
    PENDING_PRICE_REVISION,
    SUBMITTER,
)


class In(IntEnum):
    """Server -> client message ids (ibapi's IN)."""

    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    CURRENT_TIME = 49
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    COMPLETED_ORDER = 101
    COMPLETED_ORDERS_END = 102
    CURRENT_TIME_IN_MILLIS = 109


class Out(IntEnum):
    """Client -> server message ids (ibapi's OUTGOING)."""

    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    EXERCISE_OPTIONS = 21
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_COMPLETED_ORDERS = 99
    REQ_CURRENT_TIME_IN_MILLIS = 105


# Messages that would change an account. The harness never sends them and
# the mock answers them with an error, so a read-only run stays read-only.
ORDER_MESSAGES: frozenset[int] = frozenset({Out.PLACE_ORDER, Out.CANCEL_ORDER, Out.REQ_GLOBAL_CANCEL, Out.EXERCISE_OPTIONS})


def message_name(msg_id: int, *, from_client: bool) -> str:
    """Readable name for transcripts: 'reqPositions', 'managedAccounts', ..."""
    table = _OUT_NAMES if from_client else _IN_NAMES
    return table.get(msg_id, f"msg{msg_id}")


_IN_NAMES: dict[int, str] = {
    3: "orderStatus", 4: "error", 5: "openOrder", 6: "updateAccountValue", 7: "updatePortfolio",
    8: "updateAccountTime", 9: "nextValidId", 11: "execDetails", 15: "managedAccounts",
    49: "currentTime", 53: "openOrderEnd", 54: "accountDownloadEnd", 55: "execDetailsEnd",
    59: "commissionReport", 61: "position", 62: "positionEnd", 63: "accountSummary",
    64: "accountSummaryEnd", 73: "accountUpdateMulti", 74: "accountUpdateMultiEnd",
    101: "completedOrder", 102: "completedOrdersEnd", 109: "currentTimeInMillis",
}
_OUT_NAMES: dict[int, str] = {
    1: "reqMktData", 3: "placeOrder", 4: "cancelOrder", 5: "reqOpenOrders", 6: "reqAccountUpdates",
    7: "reqExecutions", 8: "reqIds", 9: "reqContractDetails", 15: "reqAutoOpenOrders",
    16: "reqAllOpenOrders", 17: "reqManagedAccts", 21: "exerciseOptions", 49: "reqCurrentTime",
    58: "reqGlobalCancel", 59: "reqMarketDataType", 61: "reqPositions", 62: "reqAccountSummary",
    63: "cancelAccountSummary", 64: "cancelPositions", 71: "startApi", 76: "reqAccountUpdatesMulti",
    77: "cancelAccountUpdatesMulti", 99: "reqCompletedOrders", 105: "reqCurrentTimeInMillis",
}


@dataclass(frozen=True)
class Contract:
    """A contract: the fields the account and market messages carry, and
    what an app asks the Gateway for (Contract.request). The harness's one
    contract record: the mock's instruments, the codec and the clients'
    start-up steps (clients/startup.py) all use it."""

    con_id: int
    symbol: str
    sec_type: str = "STK"
    currency: str = "USD"
    exchange: str = ""
    primary_exchange: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""

    @classmethod
    def request(cls, symbol: str, sec_type: str = "STK", exchange: str = "SMART", currency: str = "USD",
                primary_exchange: str = "", last_trade_date: str = "", strike: float = 0.0, right: str = "",
                multiplier: str = "", con_id: int = 0) -> Contract:
        """What an app asks for, in the order an app writes it:
        Contract.request("AAPL") is a SMART-routed US stock (con_id 0: not yet resolved)."""
        return cls(con_id, symbol, sec_type, currency, exchange, primary_exchange, "", "", last_trade_date, strike,
                   right, multiplier)


@dataclass(frozen=True)
class Execution:
    """One fill, as execDetails reports it."""

    exec_id: str
    order_id: int
    contract: Contract
    time: str  # "yyyyMMdd HH:mm:ss" (+ zone), as the Gateway sends it
    account: str
    side: str  # BOT / SLD
    shares: float
    price: float
    perm_id: int
    client_id: int = 0
    exchange: str = "ISLAND"
    order_ref: str = ""
    model_code: str = ""
    last_liquidity: int = 1


# ---------------------------------------------------------------- server -> client


def next_valid_id(order_id: int) -> list[Field]:
    return [In.NEXT_VALID_ID, 1, order_id]


def managed_accounts(accounts: list[str]) -> list[Field]:
    return [In.MANAGED_ACCTS, 1, ",".join(accounts)]


def error(server_version: int, req_id: int, code: int, text: str, *, reject_json: str = "",
          error_time_ms: int = 0) -> list[Field]:
    """The error/notice message; its layout changed at 166 and again at 194."""
    if server_version >= ERROR_TIME:
        return [In.ERR_MSG, req_id, code, text, reject_json, error_time_ms]
    fields: list[Field] = [In.ERR_MSG, 2, req_id, code, text]
    if server_version >= ADVANCED_ORDER_REJECT:
        fields.append(reject_json)
    return fields


def current_time(epoch_seconds: int) -> list[Field]:
    return [In.CURRENT_TIME, 1, epoch_seconds]


def current_time_in_millis(epoch_ms: int) -> list[Field]:
    return [In.CURRENT_TIME_IN_MILLIS, epoch_ms]


def _contract_fields(c: Contract, exchange: str) -> list[Field]:
    return [c.con_id, c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right, c.multiplier,
            exchange, c.currency, c.local_symbol, c.trading_class]


def position(account: str, contract: Contract, quantity: str, avg_cost: float) -> list[Field]:
    """Version 3: 16 fields exactly (ib_async unpacks it strictly)."""
    return [In.POSITION_DATA, 3, account, *_contract_fields(contract, contract.exchange), quantity, avg_cost]


def position_end() -> list[Field]:
    return [In.POSITION_END, 1]


def account_value(key: str, value: str, currency: str, account: str) -> list[Field]:
    return [In.ACCT_VALUE, 2, key, value, currency, account]


def portfolio_value(contract: Contract, quantity: str, market_price: float, market_value: float,
                    avg_cost: float, unrealized_pnl: float, realized_pnl: float, account: str) -> list[Field]:
    """Version 8: 20 fields exactly; carries primaryExchange, not exchange."""
    c = contract
    return [In.PORTFOLIO_VALUE, 8, c.con_id, c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right,
            c.multiplier, c.primary_exchange, c.currency, c.local_symbol, c.trading_class, quantity,
            market_price, market_value, avg_cost, unrealized_pnl, realized_pnl, account]


def account_time(hh_mm: str) -> list[Field]:
    return [In.ACCT_UPDATE_TIME, 1, hh_mm]


def account_download_end(account: str) -> list[Field]:
    return [In.ACCT_DOWNLOAD_END, 1, account]


def open_order_end() -> list[Field]:
    return [In.OPEN_ORDER_END, 1]


def completed_orders_end() -> list[Field]:
    """Bare id: the official decoder reads no fields, ib_async skips one."""
    return [In.COMPLETED_ORDERS_END]


def exec_details(server_version: int, req_id: int, e: Execution) -> list[Field]:
    """No version field (servers >= 136); gains fields at 178 and 198."""
    fields: list[Field] = [In.EXECUTION_DATA, req_id, e.order_id,
                           *_contract_fields(e.contract, e.contract.exchange),
                           e.exec_id, e.time, e.account, e.exchange, e.side, quantity_text(e.shares), e.price,
                           e.perm_id, e.client_id, 0, quantity_text(e.shares), e.price, e.order_ref, "", "",
                           e.model_code, e.last_liquidity]
    if server_version >= PENDING_PRICE_REVISION:
        fields.append(False)
    if server_version >= SUBMITTER:
        fields.append("")
    return fields


def exec_details_end(req_id: int) -> list[Field]:
    return [In.EXECUTION_DATA_END, 1, req_id]


def account_update_multi(req_id: int, account: str, model_code: str, key: str, value: str,
                         currency: str) -> list[Field]:
    return [In.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency]


def account_update_multi_end(req_id: int) -> list[Field]:
    return [In.ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> list[Field]:
    return [In.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> list[Field]:
    return [In.ACCOUNT_SUMMARY_END, 1, req_id]


def quantity_text(value: float) -> str:
    """Sizes are Decimal text since 163; integral sizes without a fraction."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# ---------------------------------------------------------------- client -> server

UNSET_INTEGER = 2**31 - 1  # ibapi's "no value" for integer fields


def req_ids(count: int = 1) -> list[Field]:
    return [Out.REQ_IDS, 1, count]


def req_managed_accts() -> list[Field]:
    return [Out.REQ_MANAGED_ACCTS, 1]


def req_current_time() -> list[Field]:
    return [Out.REQ_CURRENT_TIME, 1]


def req_positions() -> list[Field]:
    return [Out.REQ_POSITIONS, 1]


def req_account_updates(subscribe: bool, account: str) -> list[Field]:
    return [Out.REQ_ACCT_DATA, 2, subscribe, account]


def req_account_summary(req_id: int, group: str, tags: str) -> list[Field]:
    return [Out.REQ_ACCOUNT_SUMMARY, 1, req_id, group, tags]


def req_executions(server_version: int, req_id: int) -> list[Field]:
    fields: list[Field] = [Out.REQ_EXECUTIONS, 3, req_id, 0, "", "", "", "", "", ""]
    if server_version >= PARAMETRIZED_DAYS_OF_EXECUTIONS:
        fields += [UNSET_INTEGER, 0]  # lastNDays "not set", no specific dates (ibapi's default filter)
    return fields


def req_open_orders() -> list[Field]:
    return [Out.REQ_OPEN_ORDERS, 1]


def req_completed_orders(api_only: bool = False) -> list[Field]:
    return [Out.REQ_COMPLETED_ORDERS, api_only]


# ---------------------------------------------------------------- decoding


@dataclass
class Message:
    """A decoded frame: id, readable name and named fields."""

    msg_id: int
    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    raw: list[str] = field(default_factory=list)

    def int(self, key: str, default: int = 0) -> int:
        """A numeric field, tolerant of empty text (ibapi sends '' for unset)."""
        value = self.fields.get(key, "")
        if value in ("", None):
            return default
        try:
            return int(value)
        except ValueError:
            raise ProtocolError(f"{self.name}: field {key}={value!r} is not an integer") from None


# Request layouts after the id. Fields beyond the list are kept under
# 'extra' rather than rejected: newer clients append fields, and an unknown
# tail must never break the mock.
_REQUEST_LAYOUTS: dict[int, tuple[str, ...]] = {
    Out.REQ_OPEN_ORDERS: ("version",),
    Out.REQ_ACCT_DATA: ("version", "subscribe", "account"),
    Out.REQ_EXECUTIONS: ("version", "req_id", "client_id", "account", "time", "symbol", "sec_type",
                         "exchange", "side", "last_n_days", "n_specific_dates"),
    Out.REQ_IDS: ("version", "num_ids"),
    Out.REQ_AUTO_OPEN_ORDERS: ("version", "auto_bind"),
    Out.REQ_ALL_OPEN_ORDERS: ("version",),
    Out.REQ_MANAGED_ACCTS: ("version",),
    Out.REQ_CURRENT_TIME: ("version",),
    Out.REQ_POSITIONS: ("version",),
    Out.CANCEL_POSITIONS: ("version",),
    Out.REQ_ACCOUNT_SUMMARY: ("version", "req_id", "group", "tags"),
    Out.CANCEL_ACCOUNT_SUMMARY: ("version", "req_id"),
    Out.START_API: ("version", "client_id", "capabilities"),
    Out.REQ_ACCOUNT_UPDATES_MULTI: ("version", "req_id", "account", "model_code", "ledger_and_nlv"),
    Out.CANCEL_ACCOUNT_UPDATES_MULTI: ("version", "req_id"),
    Out.REQ_COMPLETED_ORDERS: ("api_only",),
    Out.REQ_CURRENT_TIME_IN_MILLIS: (),
}

# Reply layouts after the id, for the raw client and transcripts. The error
# message depends on the server version and is handled separately.
_REPLY_LAYOUTS: dict[int, tuple[str, ...]] = {
    In.ACCT_VALUE: ("version", "key", "value", "currency", "account"),
    In.PORTFOLIO_VALUE: ("version", "con_id", "symbol", "sec_type", "last_trade_date", "strike", "right",
                         "multiplier", "primary_exchange", "currency", "local_symbol", "trading_class",
                         "position", "market_price", "market_value", "avg_cost", "unrealized_pnl",
                         "realized_pnl", "account"),
    In.ACCT_UPDATE_TIME: ("version", "time"),
    In.NEXT_VALID_ID: ("version", "order_id"),
    In.MANAGED_ACCTS: ("version", "accounts"),
    In.CURRENT_TIME: ("version", "time"),
    In.OPEN_ORDER_END: ("version",),
    In.ACCT_DOWNLOAD_END: ("version", "account"),
    In.EXECUTION_DATA: ("req_id", "order_id", "con_id", "symbol", "sec_type", "last_trade_date", "strike",
                        "right", "multiplier", "exchange", "currency", "local_symbol", "trading_class",
                        "exec_id", "time", "account", "exec_exchange", "side", "shares", "price"),
    In.EXECUTION_DATA_END: ("version", "req_id"),
    In.POSITION_DATA: ("version", "account", "con_id", "symbol", "sec_type", "last_trade_date", "strike",
                       "right", "multiplier", "exchange", "currency", "local_symbol", "trading_class",
                       "position", "avg_cost"),
    In.POSITION_END: ("version",),
    In.ACCOUNT_SUMMARY: ("version", "req_id", "account", "tag", "value", "currency"),
    In.ACCOUNT_SUMMARY_END: ("version", "req_id"),
    In.ACCOUNT_UPDATE_MULTI: ("version", "req_id", "account", "model_code", "key", "value", "currency"),
    In.ACCOUNT_UPDATE_MULTI_END: ("version", "req_id"),
    In.COMPLETED_ORDERS_END: (),
    In.CURRENT_TIME_IN_MILLIS: ("time_ms",),
}


def _named(msg_id: int, name: str, values: list[str], layout: tuple[str, ...]) -> Message:
    named: dict[str, Any] = dict(zip(layout, values))
    if len(values) > len(layout):
        named["extra"] = values[len(layout):]
    return Message(msg_id, name, named, values)


def decode_request(fields: list[str]) -> Message:
    """A client request, named. Unknown ids decode with no named fields."""
    msg_id = message_id(fields)
    layout = _REQUEST_LAYOUTS.get(msg_id, ())
    return _named(msg_id, message_name(msg_id, from_client=True), fields[1:], layout)


def decode_reply(server_version: int, fields: list[str]) -> Message:
    """A server message, named, at the negotiated server version."""
    msg_id = message_id(fields)
    name = message_name(msg_id, from_client=False)
    if msg_id == In.ERR_MSG:
        if server_version >= ERROR_TIME:
            layout: tuple[str, ...] = ("req_id", "code", "message", "reject_json", "error_time")
        elif server_version >= ADVANCED_ORDER_REJECT:
            layout = ("version", "req_id", "code", "message", "reject_json")
        else:
            layout = ("version", "req_id", "code", "message")
        return _named(msg_id, name, fields[1:], layout)
    return _named(msg_id, name, fields[1:], _REPLY_LAYOUTS.get(msg_id, ()))


# Requests and replies beyond the account flow (contracts, history, market
# data, PnL): their layouts live in market.py and join the tables here so
# both eras decode them by name.
from . import market as _market  # noqa: E402

for _out_id, _layout in _market.TEXT_LAYOUTS.items():
    _REQUEST_LAYOUTS.setdefault(_out_id, _layout)
for _out_id, _name in _market.OUT_NAMES.items():
    _OUT_NAMES.setdefault(_out_id, _name)
for _in_id, _name in _market.IN_NAMES.items():
    _IN_NAMES.setdefault(_in_id, _name)
_REPLY_LAYOUTS.setdefault(_market.InM.POSITION_MULTI, (
    "version", "req_id", "account", "con_id", "symbol", "sec_type", "last_trade_date", "strike", "right",
    "multiplier", "exchange", "currency", "local_symbol", "trading_class", "position", "avg_cost", "model_code"))
_REPLY_LAYOUTS.setdefault(_market.InM.POSITION_MULTI_END, ("version", "req_id"))
