"""Messages beyond the start-up/account flow: contracts, history, market data, PnL.

Why a module of its own: messages.py holds the account flow every client
uses at connect time; a trading app's start-up (qualify a contract, pull
bars, take a quote, read PnL) needs ~30 more messages, and most other
requests only need their request id found so the mock can answer with an
error. Layouts follow the official client's decoder (ibapi 10.50
`decoder.py`) and request encoder (`client.py`) at the server versions the
mock serves (>= 157); every version gate used here is named after the
constant in ibapi's `server_versions.py`.

Text request layouts are installed into messages.py's table (decode by
name in both eras); protobuf request schemas here are partial on purpose:
they name the request id and the fields the mock reads, the decoder skips
the rest (tests/protocol/test_market_messages.py checks each declared field against
the official descriptors).
"""

from __future__ import annotations

from .framing import Field
from .protobuf import MessageType, ProtoField

# ibapi server_versions.py (10.50)
SYNT_REALTIME_BARS = 124  # historicalData drops its version field
MD_SIZE_MULTIPLIER = 110
SIZE_RULES = 164  # contractData drops its version field, gains minSize/sizeIncrement/suggestedSizeIncrement
BOND_ISSUERID = 176  # symbolSamples gains description/issuerId; reqContractDetails sends issuerId
FUND_DATA_FIELDS = 179  # contractData: fund fields (secType FUND only)
LAST_TRADE_DATE = 182  # contractData gains lastTradeDate
INELIGIBILITY_REASONS = 186  # contractData gains the ineligibility-reason list
HISTORICAL_DATA_END = 196  # historicalDataEnd becomes its own message (108)
UNREALIZED_PNL = 129
REALIZED_PNL = 135
SERVICE_DATA_TYPE = 0  # mktDepthExchanges' long form (< 157, so always on here)
PROTOBUF_CONTRACT_DATA = 205
PROTOBUF_MARKET_DATA = 206
PROTOBUF_ACCOUNTS_POSITIONS = 207
PROTOBUF_HISTORICAL_DATA = 208
PROTOBUF_NEWS_DATA = 209
PROTOBUF_SCAN_DATA = 210
PROTOBUF_REST_MESSAGES_1 = 211
PROTOBUF_REST_MESSAGES_2 = 212
PROTOBUF_REST_MESSAGES_3 = 213


class InM:
    """Server -> client ids (ibapi's IN) added by this module."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    CONTRACT_DATA = 10
    HISTORICAL_DATA = 17
    SCANNER_PARAMETERS = 19
    TICK_GENERIC = 45
    TICK_STRING = 46
    CONTRACT_DATA_END = 52
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_MULTI = 71
    POSITION_MULTI_END = 72
    SEC_DEF_OPT_PARAMS = 75
    SEC_DEF_OPT_PARAMS_END = 76
    SOFT_DOLLAR_TIERS = 77
    FAMILY_CODES = 78
    SYMBOL_SAMPLES = 79
    MKT_DEPTH_EXCHANGES = 80
    TICK_REQ_PARAMS = 81
    SMART_COMPONENTS = 82
    NEWS_PROVIDERS = 85
    HEAD_TIMESTAMP = 88
    HISTORICAL_DATA_UPDATE = 90
    MARKET_RULE = 93
    PNL = 94
    PNL_SINGLE = 95
    USER_INFO = 107
    HISTORICAL_DATA_END = 108


IN_NAMES: dict[int, str] = {
    1: "tickPrice", 2: "tickSize", 10: "contractData", 17: "historicalData", 19: "scannerParameters",
    45: "tickGeneric", 46: "tickString", 52: "contractDataEnd", 57: "tickSnapshotEnd", 58: "marketDataType",
    71: "positionMulti", 72: "positionMultiEnd", 75: "securityDefinitionOptionParameter",
    76: "securityDefinitionOptionParameterEnd", 77: "softDollarTiers", 78: "familyCodes", 79: "symbolSamples",
    80: "mktDepthExchanges", 81: "tickReqParams", 82: "smartComponents", 85: "newsProviders",
    88: "headTimestamp", 90: "historicalDataUpdate", 93: "marketRule", 94: "pnl", 95: "pnlSingle", 107: "userInfo",
    108: "historicalDataEnd",
}

# Every client -> server id of ibapi 10.50's OUT, by name (transcripts).
OUT_NAMES: dict[int, str] = {
    1: "reqMktData", 2: "cancelMktData", 3: "placeOrder", 4: "cancelOrder", 5: "reqOpenOrders",
    6: "reqAccountUpdates", 7: "reqExecutions", 8: "reqIds", 9: "reqContractDetails", 10: "reqMktDepth",
    11: "cancelMktDepth", 12: "reqNewsBulletins", 13: "cancelNewsBulletins", 14: "setServerLogLevel",
    15: "reqAutoOpenOrders", 16: "reqAllOpenOrders", 17: "reqManagedAccts", 18: "requestFA", 19: "replaceFA",
    20: "reqHistoricalData", 21: "exerciseOptions", 22: "reqScannerSubscription",
    23: "cancelScannerSubscription", 24: "reqScannerParameters", 25: "cancelHistoricalData",
    49: "reqCurrentTime", 50: "reqRealTimeBars", 51: "cancelRealTimeBars", 54: "calculateImpliedVolatility",
    55: "calculateOptionPrice", 56: "cancelCalculateImpliedVolatility", 57: "cancelCalculateOptionPrice",
    58: "reqGlobalCancel", 59: "reqMarketDataType", 61: "reqPositions", 62: "reqAccountSummary",
    63: "cancelAccountSummary", 64: "cancelPositions", 65: "verifyRequest", 66: "verifyMessage",
    67: "queryDisplayGroups", 68: "subscribeToGroupEvents", 69: "updateDisplayGroup",
    70: "unsubscribeFromGroupEvents", 71: "startApi", 72: "verifyAndAuthRequest", 73: "verifyAndAuthMessage",
    74: "reqPositionsMulti", 75: "cancelPositionsMulti", 76: "reqAccountUpdatesMulti",
    77: "cancelAccountUpdatesMulti", 78: "reqSecDefOptParams", 79: "reqSoftDollarTiers", 80: "reqFamilyCodes",
    81: "reqMatchingSymbols", 82: "reqMktDepthExchanges", 83: "reqSmartComponents", 84: "reqNewsArticle",
    85: "reqNewsProviders", 86: "reqHistoricalNews", 87: "reqHeadTimeStamp", 88: "reqHistogramData",
    89: "cancelHistogramData", 90: "cancelHeadTimeStamp", 91: "reqMarketRule", 92: "reqPnL", 93: "cancelPnL",
    94: "reqPnLSingle", 95: "cancelPnLSingle", 96: "reqHistoricalTicks", 97: "reqTickByTickData",
    98: "cancelTickByTickData", 99: "reqCompletedOrders", 100: "reqWshMetaData", 101: "cancelWshMetaData",
    102: "reqWshEventData", 103: "cancelWshEventData", 104: "reqUserInfo", 105: "reqCurrentTimeInMillis",
    106: "cancelContractData", 107: "cancelHistoricalTicks", 108: "reqConfig", 109: "updateConfig",
}

_CONTRACT = ("con_id", "symbol", "sec_type", "last_trade_date", "strike", "right", "multiplier", "exchange",
             "primary_exchange", "currency", "local_symbol", "trading_class")
_V_REQ = ("version", "req_id")

# Text layouts after the id, as ibapi 10.50's client.py writes them at
# server versions >= 157 (what the mock serves). Only the requests the
# account flow (messages.py) does not already name.
TEXT_LAYOUTS: dict[int, tuple[str, ...]] = {
    1: ("version", "req_id", *_CONTRACT, "delta_neutral", "generic_ticks", "snapshot", "regulatory_snapshot",
        "options"),
    2: _V_REQ, 59: ("version", "market_data_type"),
    9: ("version", "req_id", *_CONTRACT, "include_expired", "sec_id_type", "sec_id", "issuer_id"),
    10: _V_REQ, 11: _V_REQ,
    12: ("version", "all_messages"), 13: ("version",), 14: ("version", "log_level"),
    18: ("version", "fa_data_type"), 19: ("version", "fa_data_type", "xml", "req_id"),
    20: ("req_id", *_CONTRACT, "include_expired", "end_date_time", "bar_size", "duration", "use_rth",
         "what_to_show", "format_date", "keep_up_to_date", "chart_options"),
    22: ("req_id",), 23: _V_REQ, 24: ("version",), 25: _V_REQ,
    50: _V_REQ, 51: _V_REQ, 54: _V_REQ, 55: _V_REQ, 56: _V_REQ, 57: _V_REQ,
    65: ("version", "api_name", "api_version"), 66: ("version", "api_data"),
    67: _V_REQ, 68: ("version", "req_id", "group_id"), 69: ("version", "req_id", "contract_info"), 70: _V_REQ,
    72: ("version", "api_name", "api_version", "opaque_key"), 73: ("version", "api_data", "xyz_response"),
    74: ("version", "req_id", "account", "model_code"), 75: _V_REQ,
    78: ("req_id", "underlying_symbol", "fut_fop_exchange", "underlying_sec_type", "underlying_con_id"),
    79: ("req_id",), 80: (), 81: ("req_id", "pattern"), 82: (), 83: ("req_id", "bbo_exchange"),
    84: ("req_id",), 85: (), 86: ("req_id",),
    87: ("req_id", *_CONTRACT, "include_expired", "use_rth", "what_to_show", "format_date"),
    88: ("req_id",), 89: ("req_id",), 90: ("req_id",), 91: ("market_rule_id",),
    92: ("req_id", "account", "model_code"), 93: ("req_id",),
    94: ("req_id", "account", "model_code", "con_id"), 95: ("req_id",),
    96: ("req_id",), 97: ("req_id",), 98: ("req_id",),
    100: ("req_id",), 101: ("req_id",), 102: ("req_id",), 103: ("req_id",), 104: ("req_id",),
    106: ("req_id",), 107: ("req_id",), 108: ("req_id",), 109: ("req_id",),
}

# ---------------------------------------------------------------- protobuf requests (partial schemas)

_PROTO_CONTRACT_FIELDS = (
    (1, "conId", "int32"), (2, "symbol", "string"), (3, "secType", "string"),
    (4, "lastTradeDateOrContractMonth", "string"), (5, "strike", "double"), (6, "right", "string"),
    (7, "multiplier", "double"), (8, "exchange", "string"), (9, "primaryExch", "string"),
    (10, "currency", "string"), (11, "localSymbol", "string"), (12, "tradingClass", "string"),
    (18, "includeExpired", "bool"),
)
ProtoContract = MessageType("Contract", tuple(ProtoField(n, name, t) for n, name, t in _PROTO_CONTRACT_FIELDS))
CONTRACT_SPEC = (
    ("conId", "con_id"), ("symbol", "symbol"), ("secType", "sec_type"),
    ("lastTradeDateOrContractMonth", "last_trade_date"), ("strike", "strike"), ("right", "right"),
    ("multiplier", "multiplier"), ("exchange", "exchange"), ("primaryExch", "primary_exchange"),
    ("currency", "currency"), ("localSymbol", "local_symbol"), ("tradingClass", "trading_class"),
    ("includeExpired", "include_expired"),
)


def _req(name: str, *fields: tuple[int, str, str | MessageType]) -> MessageType:
    return MessageType(name, tuple(ProtoField(n, fname, t) for n, fname, t in fields))


_REQ_ID = (1, "reqId", "int32")
# (out id, official type name, extra fields after reqId, text names for them)
_WITH_CONTRACT = (2, "contract", ProtoContract)

PROTO_REQUESTS: dict[int, MessageType] = {
    1: _req("MarketDataRequest", _REQ_ID, _WITH_CONTRACT, (3, "genericTickList", "string"),
            (4, "snapshot", "bool"), (5, "regulatorySnapshot", "bool")),
    2: _req("CancelMarketData", _REQ_ID),
    9: _req("ContractDataRequest", _REQ_ID, _WITH_CONTRACT),
    10: _req("MarketDepthRequest", _REQ_ID), 11: _req("CancelMarketDepth", _REQ_ID),
    12: _req("NewsBulletinsRequest", (1, "allMessages", "bool")), 13: _req("CancelNewsBulletins"),
    14: _req("SetServerLogLevelRequest", (1, "logLevel", "int32")),
    18: _req("FARequest", (1, "faDataType", "int32")),
    20: _req("HistoricalDataRequest", _REQ_ID, _WITH_CONTRACT, (3, "endDateTime", "string"),
             (4, "barSizeSetting", "string"), (5, "duration", "string"), (6, "useRTH", "bool"),
             (7, "whatToShow", "string"), (8, "formatDate", "int32"), (9, "keepUpToDate", "bool")),
    22: _req("ScannerSubscriptionRequest", _REQ_ID), 23: _req("CancelScannerSubscription", _REQ_ID),
    24: _req("ScannerParametersRequest"), 25: _req("CancelHistoricalData", _REQ_ID),
    50: _req("RealTimeBarsRequest", _REQ_ID), 51: _req("CancelRealTimeBars", _REQ_ID),
    54: _req("CalculateImpliedVolatilityRequest", _REQ_ID), 55: _req("CalculateOptionPriceRequest", _REQ_ID),
    56: _req("CancelCalculateImpliedVolatility", _REQ_ID), 57: _req("CancelCalculateOptionPrice", _REQ_ID),
    65: _req("VerifyRequest", (1, "apiName", "string"), (2, "apiVersion", "string")),
    66: _req("VerifyMessageRequest", (1, "apiData", "string")),
    67: _req("QueryDisplayGroupsRequest", _REQ_ID), 68: _req("SubscribeToGroupEventsRequest", _REQ_ID),
    69: _req("UpdateDisplayGroupRequest", _REQ_ID), 70: _req("UnsubscribeFromGroupEventsRequest", _REQ_ID),
    78: _req("SecDefOptParamsRequest", _REQ_ID, (2, "underlyingSymbol", "string"),
             (3, "futFopExchange", "string"), (4, "underlyingSecType", "string"), (5, "underlyingConId", "int32")),
    79: _req("SoftDollarTiersRequest", _REQ_ID), 80: _req("FamilyCodesRequest"),
    81: _req("MatchingSymbolsRequest", _REQ_ID, (2, "pattern", "string")),
    82: _req("MarketDepthExchangesRequest"),
    83: _req("SmartComponentsRequest", _REQ_ID, (2, "bboExchange", "string")),
    84: _req("NewsArticleRequest", _REQ_ID), 85: _req("NewsProvidersRequest"),
    86: _req("HistoricalNewsRequest", _REQ_ID),
    87: _req("HeadTimestampRequest", _REQ_ID, _WITH_CONTRACT, (3, "useRTH", "bool"), (4, "whatToShow", "string"),
             (5, "formatDate", "int32")),
    88: _req("HistogramDataRequest", _REQ_ID), 89: _req("CancelHistogramData", _REQ_ID),
    90: _req("CancelHeadTimestamp", _REQ_ID), 91: _req("MarketRuleRequest", (1, "marketRuleId", "int32")),
    92: _req("PnLRequest", _REQ_ID, (2, "account", "string"), (3, "modelCode", "string")),
    93: _req("CancelPnL", _REQ_ID),
    94: _req("PnLSingleRequest", _REQ_ID, (2, "account", "string"), (3, "modelCode", "string"),
             (4, "conId", "int32")),
    95: _req("CancelPnLSingle", _REQ_ID),
    96: _req("HistoricalTicksRequest", _REQ_ID), 97: _req("TickByTickRequest", _REQ_ID),
    98: _req("CancelTickByTick", _REQ_ID),
    100: _req("WshMetaDataRequest", _REQ_ID), 101: _req("CancelWshMetaData", _REQ_ID),
    102: _req("WshEventDataRequest", _REQ_ID), 103: _req("CancelWshEventData", _REQ_ID),
    104: _req("UserInfoRequest", _REQ_ID),
    106: _req("CancelContractData", _REQ_ID), 107: _req("CancelHistoricalTicks", _REQ_ID),
    108: _req("ConfigRequest", _REQ_ID), 109: _req("UpdateConfigRequest", _REQ_ID),
    19: _req("FAReplace", _REQ_ID),
}

# proto name <-> text name, per request (proto_bridge's Spec shape).
_NAMES = {
    "reqId": "req_id", "genericTickList": "generic_ticks", "snapshot": "snapshot",
    "regulatorySnapshot": "regulatory_snapshot", "allMessages": "all_messages", "logLevel": "log_level",
    "faDataType": "fa_data_type", "endDateTime": "end_date_time", "barSizeSetting": "bar_size",
    "duration": "duration", "useRTH": "use_rth", "whatToShow": "what_to_show", "formatDate": "format_date",
    "keepUpToDate": "keep_up_to_date", "apiName": "api_name", "apiVersion": "api_version", "apiData": "api_data",
    "underlyingSymbol": "underlying_symbol", "futFopExchange": "fut_fop_exchange",
    "underlyingSecType": "underlying_sec_type", "underlyingConId": "underlying_con_id", "pattern": "pattern",
    "bboExchange": "bbo_exchange", "marketRuleId": "market_rule_id", "account": "account",
    "modelCode": "model_code", "conId": "con_id",
}
PROTO_REQUEST_SPECS: dict[int, tuple] = {
    out_id: tuple((f.name, CONTRACT_SPEC) if f.name == "contract" else (f.name, _NAMES[f.name])
                  for f in mtype.fields)
    for out_id, mtype in PROTO_REQUESTS.items()
}

# ibapi 10.50 common.getServerVersionForMessage for these requests
# (tests/protocol/test_market_messages.py checks every entry). 106..109 are absent
# there (the client gates them by their own constants and sends protobuf only).
PROTO_GATES: dict[int, int] = {
    1: PROTOBUF_MARKET_DATA, 2: PROTOBUF_MARKET_DATA, 10: PROTOBUF_MARKET_DATA, 11: PROTOBUF_MARKET_DATA,
    9: PROTOBUF_CONTRACT_DATA,
    74: PROTOBUF_ACCOUNTS_POSITIONS, 75: PROTOBUF_ACCOUNTS_POSITIONS,
    20: PROTOBUF_HISTORICAL_DATA, 25: PROTOBUF_HISTORICAL_DATA, 50: PROTOBUF_HISTORICAL_DATA,
    51: PROTOBUF_HISTORICAL_DATA, 87: PROTOBUF_HISTORICAL_DATA, 90: PROTOBUF_HISTORICAL_DATA,
    88: PROTOBUF_HISTORICAL_DATA, 89: PROTOBUF_HISTORICAL_DATA, 96: PROTOBUF_HISTORICAL_DATA,
    97: PROTOBUF_HISTORICAL_DATA, 98: PROTOBUF_HISTORICAL_DATA,
    12: PROTOBUF_NEWS_DATA, 13: PROTOBUF_NEWS_DATA, 84: PROTOBUF_NEWS_DATA, 85: PROTOBUF_NEWS_DATA,
    86: PROTOBUF_NEWS_DATA, 100: PROTOBUF_NEWS_DATA, 101: PROTOBUF_NEWS_DATA, 102: PROTOBUF_NEWS_DATA,
    103: PROTOBUF_NEWS_DATA,
    24: PROTOBUF_SCAN_DATA, 22: PROTOBUF_SCAN_DATA, 23: PROTOBUF_SCAN_DATA, 92: PROTOBUF_SCAN_DATA,
    93: PROTOBUF_SCAN_DATA, 94: PROTOBUF_SCAN_DATA, 95: PROTOBUF_SCAN_DATA,
    18: PROTOBUF_REST_MESSAGES_1, 19: PROTOBUF_REST_MESSAGES_1, 54: PROTOBUF_REST_MESSAGES_1,
    56: PROTOBUF_REST_MESSAGES_1, 55: PROTOBUF_REST_MESSAGES_1, 57: PROTOBUF_REST_MESSAGES_1,
    78: PROTOBUF_REST_MESSAGES_2, 79: PROTOBUF_REST_MESSAGES_2, 80: PROTOBUF_REST_MESSAGES_2,
    81: PROTOBUF_REST_MESSAGES_2, 83: PROTOBUF_REST_MESSAGES_2, 91: PROTOBUF_REST_MESSAGES_2,
    104: PROTOBUF_REST_MESSAGES_2,
    14: PROTOBUF_REST_MESSAGES_3, 65: PROTOBUF_REST_MESSAGES_3, 66: PROTOBUF_REST_MESSAGES_3,
    67: PROTOBUF_REST_MESSAGES_3, 68: PROTOBUF_REST_MESSAGES_3, 69: PROTOBUF_REST_MESSAGES_3,
    70: PROTOBUF_REST_MESSAGES_3, 82: PROTOBUF_REST_MESSAGES_3,
}

# ---------------------------------------------------------------- server -> client (text)


def _num(value: float) -> str:
    """Prices as the Gateway prints them: no trailing zeros beyond what is needed."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def contract_data(server_version: int, req_id: int, d: dict[str, Field]) -> list[Field]:
    """contractData (10); `d` holds ContractDetails values by the decoder's names."""
    fields: list[Field] = [InM.CONTRACT_DATA]
    if server_version < SIZE_RULES:
        fields.append(8)
    fields += [req_id, d["symbol"], d["sec_type"], d["last_trade_date_or_month"]]
    if server_version >= LAST_TRADE_DATE:
        fields.append(d["last_trade_date"])
    fields += [d["strike"], d["right"], d["exchange"], d["currency"], d["local_symbol"], d["market_name"],
               d["trading_class"], d["con_id"], d["min_tick"]]
    if MD_SIZE_MULTIPLIER <= server_version < SIZE_RULES:
        fields.append(1)  # mdSizeMultiplier (unused by clients)
    fields += [d["multiplier"], d["order_types"], d["valid_exchanges"], 1, d["under_con_id"], d["long_name"],
               d["primary_exchange"], d["contract_month"], d["industry"], d["category"], d["subcategory"],
               d["time_zone_id"], d["trading_hours"], d["liquid_hours"], "", "", 0,  # evRule, evMultiplier, secIds
               d["agg_group"], d["under_symbol"], d["under_sec_type"], d["market_rule_ids"],
               d["real_expiration_date"], d["stock_type"]]
    if server_version == 163:
        fields.append(d["size_increment"])  # sizeMinTick, dropped at 164
    if server_version >= SIZE_RULES:
        fields += [d["min_size"], d["size_increment"], d["suggested_size_increment"]]
    if server_version >= INELIGIBILITY_REASONS:
        fields.append(0)
    return fields


def contract_data_end(req_id: int) -> list[Field]:
    return [InM.CONTRACT_DATA_END, 1, req_id]


def symbol_samples(server_version: int, req_id: int, rows: list[tuple]) -> list[Field]:
    """rows: (conId, symbol, secType, primaryExchange, currency, derivSecTypes, description)."""
    fields: list[Field] = [InM.SYMBOL_SAMPLES, req_id, len(rows)]
    for con_id, symbol, sec_type, primary, currency, derivs, description in rows:
        fields += [con_id, symbol, sec_type, primary, currency, len(derivs), *derivs]
        if server_version >= BOND_ISSUERID:
            fields += [description, ""]
    return fields


def sec_def_opt_params(req_id: int, exchange: str, under_con_id: int, trading_class: str, multiplier: str,
                       expirations: list[str], strikes: list[float]) -> list[Field]:
    return [InM.SEC_DEF_OPT_PARAMS, req_id, exchange, under_con_id, trading_class, multiplier,
            len(expirations), *expirations, len(strikes), *[_num(s) for s in strikes]]


def sec_def_opt_params_end(req_id: int) -> list[Field]:
    return [InM.SEC_DEF_OPT_PARAMS_END, req_id]


def head_timestamp(req_id: int, stamp: str) -> list[Field]:
    return [InM.HEAD_TIMESTAMP, req_id, stamp]


def historical_data(server_version: int, req_id: int, start: str, end: str,
                    bars: list[tuple[str, float, float, float, float, str, str, int]]) -> list[Field]:
    """historicalData (17): bars are (date, open, high, low, close, volume, wap, count)."""
    fields: list[Field] = [InM.HISTORICAL_DATA]
    if server_version < SYNT_REALTIME_BARS:
        fields.append(3)
    fields.append(req_id)
    if server_version < HISTORICAL_DATA_END:
        fields += [start, end]
    fields.append(len(bars))
    for date, o, h, low, c, volume, wap, count in bars:
        fields += [date, _num(o), _num(h), _num(low), _num(c), volume, wap]
        if server_version < SYNT_REALTIME_BARS:
            fields.append("false")  # hasGaps
        fields.append(count)
    return fields


def historical_data_end(req_id: int, start: str, end: str) -> list[Field]:
    """historicalDataEnd (108): its own message from server version 196."""
    return [InM.HISTORICAL_DATA_END, req_id, start, end]


def historical_data_update(req_id: int, bar: tuple[str, float, float, float, float, str, str, int]) -> list[Field]:
    """historicalDataUpdate (90): the bar being built, for keepUpToDate requests
    (the decoder's order: count, date, open, close, high, low, wap, volume)."""
    date, o, h, low, c, volume, wap, count = bar
    return [InM.HISTORICAL_DATA_UPDATE, req_id, count, date, _num(o), _num(c), _num(h), _num(low), wap, volume]


def tick_req_params(ticker_id: int, min_tick: float, bbo_exchange: str, snapshot_permissions: int) -> list[Field]:
    return [InM.TICK_REQ_PARAMS, ticker_id, _num(min_tick), bbo_exchange, snapshot_permissions]


def market_data_type(ticker_id: int, data_type: int) -> list[Field]:
    return [InM.MARKET_DATA_TYPE, 1, ticker_id, data_type]


def tick_price(ticker_id: int, tick_type: int, price: float, size: str, attr_mask: int = 0) -> list[Field]:
    return [InM.TICK_PRICE, 6, ticker_id, tick_type, _num(price), size, attr_mask]


def tick_size(ticker_id: int, tick_type: int, size: str) -> list[Field]:
    return [InM.TICK_SIZE, 6, ticker_id, tick_type, size]


def tick_string(ticker_id: int, tick_type: int, value: str) -> list[Field]:
    return [InM.TICK_STRING, 6, ticker_id, tick_type, value]


def tick_generic(ticker_id: int, tick_type: int, value: float) -> list[Field]:
    return [InM.TICK_GENERIC, 6, ticker_id, tick_type, _num(value)]


def tick_snapshot_end(ticker_id: int) -> list[Field]:
    return [InM.TICK_SNAPSHOT_END, 1, ticker_id]


def pnl(server_version: int, req_id: int, daily: float, unrealized: float, realized: float) -> list[Field]:
    fields: list[Field] = [InM.PNL, req_id, _num(daily)]
    if server_version >= UNREALIZED_PNL:
        fields.append(_num(unrealized))
    if server_version >= REALIZED_PNL:
        fields.append(_num(realized))
    return fields


def pnl_single(server_version: int, req_id: int, position: str, daily: float, unrealized: float,
               realized: float, value: float) -> list[Field]:
    fields: list[Field] = [InM.PNL_SINGLE, req_id, position, _num(daily)]
    if server_version >= UNREALIZED_PNL:
        fields.append(_num(unrealized))
    if server_version >= REALIZED_PNL:
        fields.append(_num(realized))
    fields.append(_num(value))
    return fields


def position_multi(req_id: int, account: str, contract_fields: list[Field], position: str, avg_cost: float,
                   model_code: str) -> list[Field]:
    """contract_fields: conId .. tradingClass with `exchange` (11 fields, as messages._contract_fields)."""
    return [InM.POSITION_MULTI, 1, req_id, account, *contract_fields, position, avg_cost, model_code]


def position_multi_end(req_id: int) -> list[Field]:
    return [InM.POSITION_MULTI_END, 1, req_id]


UNSET_DOUBLE_TEXT = "1.7976931348623157E308"  # Double.MAX_VALUE: "no value"


def commission_report(exec_id: str, commission: float, currency: str,
                      realized_pnl: float | None = None) -> list[Field]:
    """commissionAndFeesReport (59). An opening fill has no realized PnL and
    a stock no yield: the Gateway sends Double.MAX_VALUE for both and an
    empty yield date (nautilus_trader's commission_report_1.txt capture)."""
    realized = UNSET_DOUBLE_TEXT if realized_pnl is None else _num(realized_pnl)
    return [InM.COMMISSION_REPORT, 1, exec_id, _num(commission), currency, realized, UNSET_DOUBLE_TEXT, ""]


def family_codes(codes: list[tuple[str, str]]) -> list[Field]:
    return [InM.FAMILY_CODES, len(codes), *[x for pair in codes for x in pair]]


def user_info(req_id: int, white_branding_id: str) -> list[Field]:
    return [InM.USER_INFO, req_id, white_branding_id]


def market_rule(rule_id: int, increments: list[tuple[float, float]]) -> list[Field]:
    return [InM.MARKET_RULE, rule_id, len(increments), *[_num(x) for pair in increments for x in pair]]


def mkt_depth_exchanges(rows: list[tuple[str, str, str, str, int]]) -> list[Field]:
    """rows: (exchange, secType, listingExch, serviceDataType, aggGroup); notSuppIsL2 0."""
    fields: list[Field] = [InM.MKT_DEPTH_EXCHANGES, len(rows)]
    for row in rows:
        fields += [*row, 0]
    return fields


def smart_components(req_id: int, rows: list[tuple[int, str, str]]) -> list[Field]:
    return [InM.SMART_COMPONENTS, req_id, len(rows), *[x for row in rows for x in row]]


def soft_dollar_tiers(req_id: int) -> list[Field]:
    return [InM.SOFT_DOLLAR_TIERS, req_id, 0]


def news_providers(rows: list[tuple[str, str]]) -> list[Field]:
    return [InM.NEWS_PROVIDERS, len(rows), *[x for row in rows for x in row]]


def scanner_parameters(xml: str) -> list[Field]:
    return [InM.SCANNER_PARAMETERS, 1, xml]


# ---------------------------------------------------------------- server -> client (protobuf)
#
# From each family's gate (contract data 205, market data 206, historical
# data 208, PnL 210) the official client reads these replies as protobuf;
# the mock sends them so under its reply model (era.py). The schemas are
# partial (the fields the mock sets; the decoder reads absent ones as
# unset) and are built from the text fields the encoders above produce at
# those versions, whose layout no longer changes after 186.

_HistoricalDataBar = _req("HistoricalDataBar", (1, "date", "string"), (2, "open", "double"), (3, "high", "double"),
                          (4, "low", "double"), (5, "close", "double"), (6, "volume", "string"),
                          (7, "WAP", "string"), (8, "barCount", "int32"))
_ProtoContractOut = MessageType("Contract", ProtoContract.fields[:12] + (ProtoField(21, "lastTradeDate", "string"),))
_ContractDetails = _req("ContractDetails", *[
    (n, name, "int32" if name in ("priceMagnifier", "underConId", "aggGroup") else "string")
    for n, name in ((1, "marketName"), (2, "minTick"), (3, "orderTypes"), (4, "validExchanges"),
                    (5, "priceMagnifier"), (6, "underConId"), (7, "longName"), (8, "contractMonth"), (9, "industry"),
                    (10, "category"), (11, "subcategory"), (12, "timeZoneId"), (13, "tradingHours"),
                    (14, "liquidHours"), (18, "aggGroup"), (19, "underSymbol"), (20, "underSecType"),
                    (21, "marketRuleIds"), (22, "realExpirationDate"), (23, "stockType"), (24, "minSize"),
                    (25, "sizeIncrement"), (26, "suggestedSizeIncrement"))])

PROTO_REPLIES: dict[int, MessageType] = {
    InM.CONTRACT_DATA: _req("ContractData", _REQ_ID, (2, "contract", _ProtoContractOut),
                            (3, "contractDetails", _ContractDetails)),
    InM.CONTRACT_DATA_END: _req("ContractDataEnd", _REQ_ID),
    InM.HISTORICAL_DATA: MessageType("HistoricalData", (
        ProtoField(1, "reqId", "int32"), ProtoField(2, "historicalDataBars", _HistoricalDataBar, repeated=True,
                                                    optional=False))),
    InM.HISTORICAL_DATA_END: _req("HistoricalDataEnd", _REQ_ID, (2, "startDateStr", "string"),
                                  (3, "endDateStr", "string")),
    InM.HISTORICAL_DATA_UPDATE: _req("HistoricalDataUpdate", _REQ_ID, (2, "historicalDataBar", _HistoricalDataBar)),
    InM.HEAD_TIMESTAMP: _req("HeadTimestamp", _REQ_ID, (2, "headTimestamp", "string")),
    InM.TICK_PRICE: _req("TickPrice", _REQ_ID, (2, "tickType", "int32"), (3, "price", "double"),
                         (4, "size", "string"), (5, "attrMask", "int32")),
    InM.TICK_SIZE: _req("TickSize", _REQ_ID, (2, "tickType", "int32"), (3, "size", "string")),
    InM.TICK_REQ_PARAMS: _req("TickReqParams", _REQ_ID, (2, "minTick", "string"), (3, "bboExchange", "string"),
                              (4, "snapshotPermissions", "int32")),
    InM.MARKET_DATA_TYPE: _req("MarketDataType", _REQ_ID, (2, "marketDataType", "int32")),
    InM.TICK_SNAPSHOT_END: _req("TickSnapshotEnd", _REQ_ID),
    InM.PNL: _req("PnL", _REQ_ID, (2, "dailyPnL", "double"), (3, "unrealizedPnL", "double"),
                  (4, "realizedPnL", "double")),
    InM.PNL_SINGLE: _req("PnLSingle", _REQ_ID, (2, "position", "string"), (3, "dailyPnL", "double"),
                         (4, "unrealizedPnL", "double"), (5, "realizedPnL", "double"), (6, "value", "double")),
}


def _bar_values(date: str, o: str, h: str, low: str, c: str, volume: str, wap: str, count: str) -> dict[str, object]:
    return {"date": date, "open": float(o), "high": float(h), "low": float(low), "close": float(c),
            "volume": volume, "WAP": wap, "barCount": int(count)}


def _contract_data_values(t: list[str]) -> dict[str, object]:
    """contractData's text fields at >= 186 (no version; lastTradeDate; size rules; no md multiplier)."""
    (req_id, symbol, sec_type, ltd_or_month, last_trade_date, strike, right, exchange, currency, local_symbol,
     market_name, trading_class, con_id, min_tick, multiplier, order_types, valid_exchanges, magnifier, under_con_id,
     long_name, primary, month, industry, category, subcategory, tz, hours, liquid, _ev_rule, _ev_mult, _n_sec_ids,
     agg_group, under_symbol, under_sec_type, rule_ids, real_expiration, stock_type, min_size, size_increment,
     suggested, _n_reasons) = t
    contract: dict[str, object] = {"conId": int(con_id), "symbol": symbol, "secType": sec_type,
                                   "lastTradeDateOrContractMonth": ltd_or_month, "strike": float(strike or 0),
                                   "right": right, "exchange": exchange, "primaryExch": primary, "currency": currency,
                                   "localSymbol": local_symbol, "tradingClass": trading_class,
                                   "lastTradeDate": last_trade_date}
    if multiplier:
        contract["multiplier"] = float(multiplier)
    details = {"marketName": market_name, "minTick": min_tick, "orderTypes": order_types,
               "validExchanges": valid_exchanges, "priceMagnifier": int(magnifier), "underConId": int(under_con_id),
               "longName": long_name, "contractMonth": month, "industry": industry, "category": category,
               "subcategory": subcategory, "timeZoneId": tz, "tradingHours": hours, "liquidHours": liquid,
               "aggGroup": int(agg_group), "underSymbol": under_symbol, "underSecType": under_sec_type,
               "marketRuleIds": rule_ids, "realExpirationDate": real_expiration, "stockType": stock_type,
               "minSize": min_size, "sizeIncrement": size_increment, "suggestedSizeIncrement": suggested}
    return {"reqId": int(req_id), "contract": {k: v for k, v in contract.items() if v != ""},
            "contractDetails": {k: v for k, v in details.items() if v != ""}}


def reply_proto_values(fields: list[Field]) -> tuple[int, MessageType, dict[str, object]]:
    """A reply this module encodes (text fields, id first, at >= 205) -> (id, type, protobuf values)."""
    from .framing import field_text

    t = [field_text(f) for f in fields]
    msg_id, rest = int(t[0]), t[1:]
    mtype = PROTO_REPLIES[msg_id]
    values: dict[str, object]
    if msg_id == InM.CONTRACT_DATA:
        values = _contract_data_values(rest)
    elif msg_id == InM.HISTORICAL_DATA:
        req_id, count, bars = rest[0], int(rest[1]), rest[2:]
        values = {"reqId": int(req_id),
                  "historicalDataBars": [_bar_values(*bars[i * 8:(i + 1) * 8]) for i in range(count)]}
    elif msg_id == InM.HISTORICAL_DATA_UPDATE:
        req_id, bar_count, date, o, c, h, low, wap, volume = rest
        values = {"reqId": int(req_id), "historicalDataBar": _bar_values(date, o, h, low, c, volume, wap, bar_count)}
    elif msg_id in (InM.TICK_PRICE, InM.TICK_SIZE, InM.MARKET_DATA_TYPE, InM.TICK_SNAPSHOT_END):
        body = rest[1:]  # past the version field
        names = {InM.TICK_PRICE: (("reqId", int), ("tickType", int), ("price", float), ("size", str),
                                  ("attrMask", int)),
                 InM.TICK_SIZE: (("reqId", int), ("tickType", int), ("size", str)),
                 InM.MARKET_DATA_TYPE: (("reqId", int), ("marketDataType", int)),
                 InM.TICK_SNAPSHOT_END: (("reqId", int),)}[msg_id]
        values = {name: kind(text) for (name, kind), text in zip(names, body)}
    else:
        names = {InM.CONTRACT_DATA_END: (("reqId", int),),  # after the version field, below
                 InM.HISTORICAL_DATA_END: (("reqId", int), ("startDateStr", str), ("endDateStr", str)),
                 InM.HEAD_TIMESTAMP: (("reqId", int), ("headTimestamp", str)),
                 InM.TICK_REQ_PARAMS: (("reqId", int), ("minTick", str), ("bboExchange", str),
                                       ("snapshotPermissions", int)),
                 InM.PNL: (("reqId", int), ("dailyPnL", float), ("unrealizedPnL", float), ("realizedPnL", float)),
                 InM.PNL_SINGLE: (("reqId", int), ("position", str), ("dailyPnL", float), ("unrealizedPnL", float),
                                  ("realizedPnL", float), ("value", float))}[msg_id]
        body = rest[1:] if msg_id == InM.CONTRACT_DATA_END else rest
        values = {name: kind(text) for (name, kind), text in zip(names, body)}
    return msg_id, mtype, values
