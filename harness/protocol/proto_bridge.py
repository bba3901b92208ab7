"""Text layouts <-> protobuf messages, for the messages the harness speaks.

Why a bridge rather than a second set of encoders: the mock's handlers and
the raw client already build and read messages as text field lists named by
messages.py. The protobuf form of each message carries the same values
under camelCase names, with typed numbers and a nested Contract/Execution.
One table per message (text name <-> proto field) keeps both forms
provably the same message: what the mock sends as protobuf decodes, on the
other side, to exactly the named fields the text form gives.

Presence follows the two real writers: the official client sets a request
field only when it has a value (non-empty string, true bool, an int other
than UNSET_INTEGER; nested messages always), and the mock sets a reply
field whenever its text is non-empty.
"""

from __future__ import annotations

from typing import Any, Union

from .errors import ProtocolError
from .framing import Field, field_text
from .market import PROTO_REPLIES, PROTO_REQUEST_SPECS, PROTO_REQUESTS, reply_proto_values
from .messages import UNSET_INTEGER, In, Message, Out, decode_reply, decode_request, message_name
from .proto_messages import REPLIES, REQUESTS
from .protobuf import MessageType, describe

# A spec pairs each proto field with the text name it corresponds to, or
# with a nested spec for an embedded message.
Spec = tuple[tuple[str, Union[str, "Spec"]], ...]

_CONTRACT_COMMON: Spec = (
    ("conId", "con_id"), ("symbol", "symbol"), ("secType", "sec_type"),
    ("lastTradeDateOrContractMonth", "last_trade_date"), ("strike", "strike"), ("right", "right"),
    ("multiplier", "multiplier"),
)
_CONTRACT_TAIL: Spec = (("currency", "currency"), ("localSymbol", "local_symbol"), ("tradingClass", "trading_class"))
CONTRACT_WITH_EXCHANGE: Spec = _CONTRACT_COMMON + (("exchange", "exchange"),) + _CONTRACT_TAIL
CONTRACT_WITH_PRIMARY: Spec = _CONTRACT_COMMON + (("primaryExch", "primary_exchange"),) + _CONTRACT_TAIL

EXECUTION: Spec = (
    ("orderId", "order_id"), ("execId", "exec_id"), ("time", "time"), ("acctNumber", "account"),
    ("exchange", "exec_exchange"), ("side", "side"), ("shares", "shares"), ("price", "price"),
    ("permId", "perm_id"), ("clientId", "client_id"), ("isLiquidation", "liquidation"), ("cumQty", "cum_qty"),
    ("avgPrice", "avg_price"), ("orderRef", "order_ref"), ("evRule", "ev_rule"),
    ("evMultiplier", "ev_multiplier"), ("modelCode", "model_code"), ("lastLiquidity", "last_liquidity"),
    ("isPriceRevisionPending", "pending_price_revision"), ("submitter", "submitter"),
)
# The text execDetails fields after "price" (messages._REPLY_LAYOUTS stops
# there and keeps the rest as "extra"), at server versions >= 198.
_EXEC_TAIL = ("perm_id", "client_id", "liquidation", "cum_qty", "avg_price", "order_ref", "ev_rule",
              "ev_multiplier", "model_code", "last_liquidity", "pending_price_revision", "submitter")

REPLY_SPECS: dict[int, Spec] = {
    In.ERR_MSG: (("id", "req_id"), ("errorTime", "error_time"), ("errorCode", "code"), ("errorMsg", "message"),
                 ("advancedOrderRejectJson", "reject_json")),
    In.NEXT_VALID_ID: (("orderId", "order_id"),),
    In.MANAGED_ACCTS: (("accountsList", "accounts"),),
    In.CURRENT_TIME: (("currentTime", "time"),),
    In.CURRENT_TIME_IN_MILLIS: (("currentTimeInMillis", "time_ms"),),
    In.POSITION_DATA: (("account", "account"), ("contract", CONTRACT_WITH_EXCHANGE), ("position", "position"),
                       ("avgCost", "avg_cost")),
    In.POSITION_END: (),
    In.ACCT_VALUE: (("key", "key"), ("value", "value"), ("currency", "currency"), ("accountName", "account")),
    In.PORTFOLIO_VALUE: (("contract", CONTRACT_WITH_PRIMARY), ("position", "position"),
                         ("marketPrice", "market_price"), ("marketValue", "market_value"),
                         ("averageCost", "avg_cost"), ("unrealizedPNL", "unrealized_pnl"),
                         ("realizedPNL", "realized_pnl"), ("accountName", "account")),
    In.ACCT_UPDATE_TIME: (("timeStamp", "time"),),
    In.ACCT_DOWNLOAD_END: (("accountName", "account"),),
    In.ACCOUNT_SUMMARY: (("reqId", "req_id"), ("account", "account"), ("tag", "tag"), ("value", "value"),
                         ("currency", "currency")),
    In.ACCOUNT_SUMMARY_END: (("reqId", "req_id"),),
    In.ACCOUNT_UPDATE_MULTI: (("reqId", "req_id"), ("account", "account"), ("modelCode", "model_code"),
                              ("key", "key"), ("value", "value"), ("currency", "currency")),
    In.ACCOUNT_UPDATE_MULTI_END: (("reqId", "req_id"),),
    In.OPEN_ORDER_END: (),
    In.COMPLETED_ORDERS_END: (),
    In.EXECUTION_DATA: (("reqId", "req_id"), ("contract", CONTRACT_WITH_EXCHANGE), ("execution", EXECUTION)),
    In.EXECUTION_DATA_END: (("reqId", "req_id"),),
}

# positionMulti / positionMultiEnd (reqPositionsMulti, protobuf from 207).
REPLY_SPECS[71] = (("reqId", "req_id"), ("account", "account"), ("contract", CONTRACT_WITH_EXCHANGE),
                   ("position", "position"), ("avgCost", "avg_cost"), ("modelCode", "model_code"))
REPLY_SPECS[72] = (("reqId", "req_id"),)

REQUEST_SPECS: dict[int, Spec] = {
    Out.START_API: (("clientId", "client_id"), ("optionalCapabilities", "capabilities")),
    Out.REQ_IDS: (("numIds", "num_ids"),),
    Out.REQ_MANAGED_ACCTS: (),
    Out.REQ_CURRENT_TIME: (),
    Out.REQ_CURRENT_TIME_IN_MILLIS: (),
    Out.REQ_POSITIONS: (),
    Out.CANCEL_POSITIONS: (),
    74: (("reqId", "req_id"), ("account", "account"), ("modelCode", "model_code")),
    75: (("reqId", "req_id"),),
    Out.REQ_OPEN_ORDERS: (),
    Out.REQ_ALL_OPEN_ORDERS: (),
    Out.REQ_AUTO_OPEN_ORDERS: (("autoBind", "auto_bind"),),
    Out.REQ_COMPLETED_ORDERS: (("apiOnly", "api_only"),),
    Out.REQ_ACCT_DATA: (("subscribe", "subscribe"), ("acctCode", "account")),
    Out.REQ_ACCOUNT_UPDATES_MULTI: (("reqId", "req_id"), ("account", "account"), ("modelCode", "model_code"),
                                    ("ledgerAndNLV", "ledger_and_nlv")),
    Out.CANCEL_ACCOUNT_UPDATES_MULTI: (("reqId", "req_id"),),
    Out.REQ_ACCOUNT_SUMMARY: (("reqId", "req_id"), ("group", "group"), ("tags", "tags")),
    Out.CANCEL_ACCOUNT_SUMMARY: (("reqId", "req_id"),),
    Out.REQ_EXECUTIONS: (("reqId", "req_id"), ("executionFilter", (
        ("clientId", "client_id"), ("acctCode", "account"), ("time", "time"), ("symbol", "symbol"),
        ("secType", "sec_type"), ("exchange", "exchange"), ("side", "side"), ("lastNDays", "last_n_days"),
        ("specificDates", "specific_dates")))),
    Out.REQ_MARKET_DATA_TYPE: (("marketDataType", "market_data_type"),),
}


# ---------------------------------------------------------------- text -> proto


def _typed(type_name: str, text: str, *, client: bool) -> tuple[bool, Any]:
    """(present, value) for one text field, by the writer's presence rule."""
    if type_name == "string":
        return text != "", text
    if type_name == "bool":
        flag = text.strip().lower() in ("1", "true")
        return (flag if client else text != ""), flag
    if text == "":
        return False, None
    if type_name in ("int32", "int64"):
        try:
            value = int(text)
        except ValueError:
            value = int(float(text))
        return not (client and value == UNSET_INTEGER), value
    if type_name == "double":
        return True, float(text)
    raise ProtocolError(f"protobuf bridge: unsupported type {type_name}")


def _to_proto(mtype: MessageType, spec: Spec, named: dict[str, Any], *, client: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for proto_name, source in spec:
        f = mtype.field(proto_name)
        if isinstance(f.type, MessageType):
            assert not isinstance(source, str)
            out[proto_name] = _to_proto(f.type, source, named, client=client)
            continue
        assert isinstance(source, str)
        text = named.get(source, "")
        if f.repeated:
            items = [int(x) for x in str(text).split(",") if x.strip()] if text else []
            if items:
                out[proto_name] = items
            continue
        present, value = _typed(f.type_name, "" if text is None else str(text), client=client)
        if present:
            out[proto_name] = value
    return out


def reply_to_proto(server_version: int, fields: list[Field]) -> tuple[int, MessageType, dict[str, Any]]:
    """A server message as the mock builds it (messages.py text fields) ->
    (message id, protobuf type, values)."""
    if int(field_text(fields[0])) in PROTO_REPLIES:  # contracts, history, market data, PnL (market.py)
        return reply_proto_values(fields)
    text = [field_text(f) for f in fields]
    msg = decode_reply(server_version, text)
    named = dict(msg.fields)
    if msg.msg_id == In.EXECUTION_DATA:
        named.update(zip(_EXEC_TAIL, named.pop("extra", [])))
    mtype, spec = REPLIES.get(msg.msg_id), REPLY_SPECS.get(msg.msg_id)
    if mtype is None or spec is None:
        raise ProtocolError(f"{msg.name}: no protobuf form")
    return msg.msg_id, mtype, _to_proto(mtype, spec, named, client=False)


def request_to_proto(fields: list[Field]) -> tuple[int, MessageType, dict[str, Any]]:
    """A client request as the raw client builds it (text fields) -> its
    protobuf form, with the official client's presence rule."""
    text = [field_text(f) for f in fields]
    msg = decode_request(text)
    mtype, spec = REQUESTS.get(msg.msg_id), REQUEST_SPECS.get(msg.msg_id)
    if mtype is None:  # beyond the account flow: market.py's partial schemas
        mtype, spec = PROTO_REQUESTS.get(msg.msg_id), PROTO_REQUEST_SPECS.get(msg.msg_id)
    if mtype is None or spec is None:
        raise ProtocolError(f"{msg.name}: no protobuf form")
    named = dict(msg.fields)
    if msg.msg_id == Out.REQ_EXECUTIONS:
        named["specific_dates"] = ",".join(named.get("extra", []) or [])
    return msg.msg_id, mtype, _to_proto(mtype, spec, named, client=True)


# ---------------------------------------------------------------- proto -> text names


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _from_proto(spec: Spec, values: dict[str, Any], out: dict[str, str]) -> None:
    for proto_name, target in spec:
        if isinstance(target, str):
            out[target] = _text(values[proto_name]) if proto_name in values else ""
        else:
            _from_proto(target, values.get(proto_name, {}), out)


def proto_message(msg_id: int, values: dict[str, Any], *, from_client: bool) -> Message:
    """A decoded protobuf frame as a Message named like its text form, so
    the mock's handlers and the raw client read both eras the same way.
    `raw` holds readable `name=value` strings for transcripts."""
    spec = (REQUEST_SPECS if from_client else REPLY_SPECS).get(msg_id, ())
    if from_client and not spec:
        spec = PROTO_REQUEST_SPECS.get(msg_id, ())
    named: dict[str, str] = {}
    _from_proto(spec, values, named)
    return Message(msg_id, message_name(msg_id, from_client=from_client), dict(named), describe(values))
