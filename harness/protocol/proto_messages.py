"""The protobuf messages of the TWS API startup and account flow (server versions 201..226).

Generated from the installed official client's message descriptors
(ibapi-stable 10.50.2, `ibapi/protobuf/*_pb2.py`, proto3, `package
protobuf`) and checked against them field by field by
tests/protocol/test_proto_schema.py, so a client upgrade that renumbers or retypes
a field fails a test instead of a handshake. Every non-repeated field is
declared `optional` upstream (explicit presence). Only the ~45 types the
mock and the raw client speak are here; orders (Order has 145 fields) are
out of scope: the mock refuses order messages by their id alone.

The id tables at the bottom map the text-protocol message ids (messages.In
and messages.Out) to these types; on the wire a protobuf frame carries
id + PROTOBUF_MSG_ID (200).
"""

from __future__ import annotations

from .messages import In, Out
from .protobuf import MessageType, ProtoField


def _msg(name: str, *fields: tuple) -> MessageType:
    """_msg("X", (1, "a", "int32"), (2, "b", Nested, "repeated"))."""
    return MessageType(name, tuple(
        ProtoField(number, fname, ftype, repeated=bool(rest and rest[0] == "repeated"),
                   optional=not (rest and rest[0] == "repeated"))
        for number, fname, ftype, *rest in fields))


# ---------------------------------------------------------------- shared building blocks

ComboLeg = _msg("ComboLeg",
                (1, "conId", "int32"), (2, "ratio", "int32"), (3, "action", "string"), (4, "exchange", "string"),
                (5, "openClose", "int32"), (6, "shortSalesSlot", "int32"), (7, "designatedLocation", "string"),
                (8, "exemptCode", "int32"), (9, "perLegPrice", "double"))
DeltaNeutralContract = _msg("DeltaNeutralContract",
                            (1, "conId", "int32"), (2, "delta", "double"), (3, "price", "double"))
Contract = _msg("Contract",
                (1, "conId", "int32"), (2, "symbol", "string"), (3, "secType", "string"),
                (4, "lastTradeDateOrContractMonth", "string"), (5, "strike", "double"), (6, "right", "string"),
                (7, "multiplier", "double"),  # a double here, text in the text protocol
                (8, "exchange", "string"), (9, "primaryExch", "string"), (10, "currency", "string"),
                (11, "localSymbol", "string"), (12, "tradingClass", "string"), (13, "secIdType", "string"),
                (14, "secId", "string"), (15, "description", "string"), (16, "issuerId", "string"),
                (17, "deltaNeutralContract", DeltaNeutralContract), (18, "includeExpired", "bool"),
                (19, "comboLegsDescrip", "string"), (20, "comboLegs", ComboLeg, "repeated"),
                (21, "lastTradeDate", "string"))
Execution = _msg("Execution",
                 (1, "orderId", "int32"), (2, "execId", "string"), (3, "time", "string"), (4, "acctNumber", "string"),
                 (5, "exchange", "string"), (6, "side", "string"), (7, "shares", "string"), (8, "price", "double"),
                 (9, "permId", "int64"), (10, "clientId", "int32"), (11, "isLiquidation", "bool"),
                 (12, "cumQty", "string"), (13, "avgPrice", "double"), (14, "orderRef", "string"),
                 (15, "evRule", "string"), (16, "evMultiplier", "double"), (17, "modelCode", "string"),
                 (18, "lastLiquidity", "int32"), (19, "isPriceRevisionPending", "bool"), (20, "submitter", "string"),
                 (21, "optExerciseOrLapseType", "int32"))
ExecutionFilter = _msg("ExecutionFilter",
                       (1, "clientId", "int32"), (2, "acctCode", "string"), (3, "time", "string"),
                       (4, "symbol", "string"), (5, "secType", "string"), (6, "exchange", "string"),
                       (7, "side", "string"), (8, "lastNDays", "int32"), (9, "specificDates", "int32", "repeated"))

# ---------------------------------------------------------------- client -> server

StartApiRequest = _msg("StartApiRequest", (1, "clientId", "int32"), (2, "optionalCapabilities", "string"))
IdsRequest = _msg("IdsRequest", (1, "numIds", "int32"))
ManagedAccountsRequest = _msg("ManagedAccountsRequest")
CurrentTimeRequest = _msg("CurrentTimeRequest")
CurrentTimeInMillisRequest = _msg("CurrentTimeInMillisRequest")
PositionsRequest = _msg("PositionsRequest")
CancelPositions = _msg("CancelPositions")
PositionsMultiRequest = _msg("PositionsMultiRequest",
                             (1, "reqId", "int32"), (2, "account", "string"), (3, "modelCode", "string"))
CancelPositionsMulti = _msg("CancelPositionsMulti", (1, "reqId", "int32"))
OpenOrdersRequest = _msg("OpenOrdersRequest")
AllOpenOrdersRequest = _msg("AllOpenOrdersRequest")
AutoOpenOrdersRequest = _msg("AutoOpenOrdersRequest", (1, "autoBind", "bool"))
CompletedOrdersRequest = _msg("CompletedOrdersRequest", (1, "apiOnly", "bool"))
AccountDataRequest = _msg("AccountDataRequest", (1, "subscribe", "bool"), (2, "acctCode", "string"))
AccountUpdatesMultiRequest = _msg("AccountUpdatesMultiRequest",
                                  (1, "reqId", "int32"), (2, "account", "string"), (3, "modelCode", "string"),
                                  (4, "ledgerAndNLV", "bool"))
CancelAccountUpdatesMulti = _msg("CancelAccountUpdatesMulti", (1, "reqId", "int32"))
AccountSummaryRequest = _msg("AccountSummaryRequest",
                             (1, "reqId", "int32"), (2, "group", "string"), (3, "tags", "string"))
CancelAccountSummary = _msg("CancelAccountSummary", (1, "reqId", "int32"))
ExecutionRequest = _msg("ExecutionRequest", (1, "reqId", "int32"), (2, "executionFilter", ExecutionFilter))
MarketDataTypeRequest = _msg("MarketDataTypeRequest", (1, "marketDataType", "int32"))

# ---------------------------------------------------------------- server -> client

ErrorMessage = _msg("ErrorMessage",
                    (1, "id", "int32"), (2, "errorTime", "int64"), (3, "errorCode", "int32"),
                    (4, "errorMsg", "string"), (5, "advancedOrderRejectJson", "string"))
NextValidId = _msg("NextValidId", (1, "orderId", "int32"))
ManagedAccounts = _msg("ManagedAccounts", (1, "accountsList", "string"))
CurrentTime = _msg("CurrentTime", (1, "currentTime", "int64"))
CurrentTimeInMillis = _msg("CurrentTimeInMillis", (1, "currentTimeInMillis", "int64"))
Position = _msg("Position",
                (1, "account", "string"), (2, "contract", Contract), (3, "position", "string"),
                (4, "avgCost", "double"))
PositionEnd = _msg("PositionEnd")
PositionMulti = _msg("PositionMulti",
                     (1, "reqId", "int32"), (2, "account", "string"), (3, "contract", Contract),
                     (4, "position", "string"), (5, "avgCost", "double"), (6, "modelCode", "string"))
PositionMultiEnd = _msg("PositionMultiEnd", (1, "reqId", "int32"))
AccountValue = _msg("AccountValue",
                    (1, "key", "string"), (2, "value", "string"), (3, "currency", "string"),
                    (4, "accountName", "string"))
PortfolioValue = _msg("PortfolioValue",
                      (1, "contract", Contract), (2, "position", "string"), (3, "marketPrice", "double"),
                      (4, "marketValue", "double"), (5, "averageCost", "double"), (6, "unrealizedPNL", "double"),
                      (7, "realizedPNL", "double"), (8, "accountName", "string"))
AccountUpdateTime = _msg("AccountUpdateTime", (1, "timeStamp", "string"))
AccountDataEnd = _msg("AccountDataEnd", (1, "accountName", "string"))
AccountSummary = _msg("AccountSummary",
                      (1, "reqId", "int32"), (2, "account", "string"), (3, "tag", "string"), (4, "value", "string"),
                      (5, "currency", "string"))
AccountSummaryEnd = _msg("AccountSummaryEnd", (1, "reqId", "int32"))
AccountUpdateMulti = _msg("AccountUpdateMulti",
                          (1, "reqId", "int32"), (2, "account", "string"), (3, "modelCode", "string"),
                          (4, "key", "string"), (5, "value", "string"), (6, "currency", "string"))
AccountUpdateMultiEnd = _msg("AccountUpdateMultiEnd", (1, "reqId", "int32"))
OpenOrdersEnd = _msg("OpenOrdersEnd")
CompletedOrdersEnd = _msg("CompletedOrdersEnd")
ExecutionDetails = _msg("ExecutionDetails",
                        (1, "reqId", "int32"), (2, "contract", Contract), (3, "execution", Execution))
ExecutionDetailsEnd = _msg("ExecutionDetailsEnd", (1, "reqId", "int32"))

ALL: dict[str, MessageType] = {
    value.name: value for value in list(globals().values()) if isinstance(value, MessageType)
}

# ---------------------------------------------------------------- message id -> type

# Client requests, by text message id (the official client's OUTGOING).
REQUESTS: dict[int, MessageType] = {
    Out.START_API: StartApiRequest,
    Out.REQ_IDS: IdsRequest,
    Out.REQ_MANAGED_ACCTS: ManagedAccountsRequest,
    Out.REQ_CURRENT_TIME: CurrentTimeRequest,
    Out.REQ_CURRENT_TIME_IN_MILLIS: CurrentTimeInMillisRequest,
    Out.REQ_POSITIONS: PositionsRequest,
    Out.CANCEL_POSITIONS: CancelPositions,
    74: PositionsMultiRequest,  # REQ_POSITIONS_MULTI
    75: CancelPositionsMulti,  # CANCEL_POSITIONS_MULTI
    Out.REQ_OPEN_ORDERS: OpenOrdersRequest,
    Out.REQ_ALL_OPEN_ORDERS: AllOpenOrdersRequest,
    Out.REQ_AUTO_OPEN_ORDERS: AutoOpenOrdersRequest,
    Out.REQ_COMPLETED_ORDERS: CompletedOrdersRequest,
    Out.REQ_ACCT_DATA: AccountDataRequest,
    Out.REQ_ACCOUNT_UPDATES_MULTI: AccountUpdatesMultiRequest,
    Out.CANCEL_ACCOUNT_UPDATES_MULTI: CancelAccountUpdatesMulti,
    Out.REQ_ACCOUNT_SUMMARY: AccountSummaryRequest,
    Out.CANCEL_ACCOUNT_SUMMARY: CancelAccountSummary,
    Out.REQ_EXECUTIONS: ExecutionRequest,
    Out.REQ_MARKET_DATA_TYPE: MarketDataTypeRequest,
}

# Server messages, by text message id (the official client's IN).
REPLIES: dict[int, MessageType] = {
    In.ERR_MSG: ErrorMessage,
    In.NEXT_VALID_ID: NextValidId,
    In.MANAGED_ACCTS: ManagedAccounts,
    In.CURRENT_TIME: CurrentTime,
    In.CURRENT_TIME_IN_MILLIS: CurrentTimeInMillis,
    In.POSITION_DATA: Position,
    In.POSITION_END: PositionEnd,
    71: PositionMulti,  # POSITION_MULTI
    72: PositionMultiEnd,  # POSITION_MULTI_END
    In.ACCT_VALUE: AccountValue,
    In.PORTFOLIO_VALUE: PortfolioValue,
    In.ACCT_UPDATE_TIME: AccountUpdateTime,
    In.ACCT_DOWNLOAD_END: AccountDataEnd,
    In.ACCOUNT_SUMMARY: AccountSummary,
    In.ACCOUNT_SUMMARY_END: AccountSummaryEnd,
    In.ACCOUNT_UPDATE_MULTI: AccountUpdateMulti,
    In.ACCOUNT_UPDATE_MULTI_END: AccountUpdateMultiEnd,
    In.OPEN_ORDER_END: OpenOrdersEnd,
    In.COMPLETED_ORDERS_END: CompletedOrdersEnd,
    In.EXECUTION_DATA: ExecutionDetails,
    In.EXECUTION_DATA_END: ExecutionDetailsEnd,
}
