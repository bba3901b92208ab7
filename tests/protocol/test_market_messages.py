"""The start-up messages (contracts, bars, ticks, PnL) against the official client.

Why: the official decoder checks field counts and positions strictly and
silently drops a message whose layout is off by one field, and the layouts
change with the server version (contractData at 164, 176, 182, 186; bars at
196; PnL at 129/135). Every reply the mock builds is fed to ibapi 10.50's
Decoder at each version the profiles negotiate (text, and text behind a
binary id at >= 201), and every request layout the mock reads is checked
against the bytes ibapi's EClient writes.
"""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

import pytest
from ibapi import comm
from ibapi.client import EClient
from ibapi.common import getServerVersionForMessage
from ibapi.contract import Contract as IbContract
from ibapi.decoder import Decoder
from ibapi.wrapper import EWrapper

from harness.mock.instruments import AAPL, ES, EURUSD, InstrumentBook
from harness.mock.market import BAR_SIZES, BarRequest, bars, parse_request, quote
from harness.protocol import market as mk
from harness.protocol.framing import FrameReader, encode_fields, split_fields
from harness.protocol.messages import decode_request

VERSIONS = [157, 163, 164, 176, 178, 182, 186, 187, 196, 200, 203, 213, 226]


class Calls(EWrapper):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []


for _name in ("contractDetails", "contractDetailsEnd", "historicalData", "historicalDataEnd", "tickPrice",
              "tickSize", "tickReqParams", "marketDataType", "tickSnapshotEnd", "pnl", "pnlSingle",
              "symbolSamples", "securityDefinitionOptionParameter", "securityDefinitionOptionParameterEnd",
              "headTimestamp", "positionMulti", "positionMultiEnd", "familyCodes", "userInfo", "marketRule",
              "mktDepthExchanges", "smartComponents", "softDollarTiers", "newsProviders", "scannerParameters",
              "commissionAndFeesReport", "historicalDataUpdate", "error"):
    def _method(self: Calls, *args: Any, _n: str = _name) -> None:
        self.calls.append((_n, args))
    setattr(Calls, _name, _method)


def decoded(sv: int, *messages: list[Any]) -> list[tuple[str, tuple[Any, ...]]]:
    wrapper = Calls()
    decoder = Decoder(wrapper, sv)
    for fields in messages:
        decoder.interpret(comm.read_fields(encode_fields(fields[1:])), int(fields[0]))
    return wrapper.calls


@pytest.mark.parametrize("sv", VERSIONS)
@pytest.mark.parametrize("inst", [AAPL, ES, EURUSD, InstrumentBook.default().instruments[-1]],
                         ids=["AAPL", "ES", "EURUSD", "AAPL-option"])
def test_contract_details_decode_at_every_version(sv: int, inst: Any) -> None:
    calls = decoded(sv, mk.contract_data(sv, 7, inst.details()), mk.contract_data_end(7))
    assert [c[0] for c in calls] == ["contractDetails", "contractDetailsEnd"]
    req_id, cd = calls[0][1]
    c = inst.contract
    assert req_id == 7
    assert (cd.contract.conId, cd.contract.symbol, cd.contract.secType, cd.contract.currency) == (
        c.con_id, c.symbol, c.sec_type, c.currency)
    assert (cd.contract.exchange, cd.contract.primaryExchange, cd.contract.localSymbol) == (
        inst.exchange, c.primary_exchange, c.local_symbol)
    assert cd.contract.lastTradeDateOrContractMonth == c.last_trade_date
    assert (cd.minTick, cd.longName, cd.timeZoneId, cd.tradingHours) == (
        inst.min_tick, inst.long_name, inst.time_zone, inst.trading_hours)
    assert cd.marketRuleIds.split(",")[0] == str(inst.market_rule)
    assert cd.contract.strike == c.strike and cd.contract.right == c.right and cd.contract.multiplier == c.multiplier
    if sv >= mk.SIZE_RULES:  # size rules arrive from 164
        assert (cd.minSize, cd.sizeIncrement) == (Decimal(inst.min_size), Decimal(inst.size_increment))


@pytest.mark.parametrize("sv", VERSIONS)
def test_historical_bars_decode_with_the_end_message_from_196(sv: int) -> None:
    req = parse_request(AAPL, "20261204 16:00:00 US/Eastern", "1 hour", "1 D", "TRADES", "1")
    rows = bars(AAPL, req)
    messages = [mk.historical_data(sv, 3, "s", "e", rows)]
    if sv >= mk.HISTORICAL_DATA_END:
        messages.append(mk.historical_data_end(3, "s", "e"))
    calls = decoded(sv, *messages)
    assert [c[0] for c in calls] == ["historicalData"] * len(rows) + ["historicalDataEnd"]
    assert calls[-1][1] == (3, "s", "e")
    first = calls[0][1][1]
    assert (first.date, first.open, first.close, first.barCount) == (rows[0][0], rows[0][1], rows[0][4], rows[0][7])


@pytest.mark.parametrize("sv", VERSIONS)
def test_snapshot_ticks_decode(sv: int) -> None:
    q = quote(AAPL, now=1_765_000_000)
    calls = decoded(sv, mk.tick_req_params(5, 0.01, "9c0001", 3), mk.market_data_type(5, 3),
                    mk.tick_price(5, 66, q.bid, q.bid_size), mk.tick_size(5, 74, q.volume),
                    mk.tick_snapshot_end(5))
    assert [c[0] for c in calls] == ["tickReqParams", "marketDataType", "tickPrice", "tickSize", "tickSize",
                                     "tickSnapshotEnd"]
    assert calls[0][1] == (5, 0.01, "9c0001", 3)
    assert calls[1][1] == (5, 3)
    assert calls[2][1][:3] == (5, 66, q.bid)
    assert calls[3][1] == (5, 69, Decimal(q.bid_size))  # the delayed bid's size, derived by the decoder


@pytest.mark.parametrize("sv", VERSIONS)
def test_pnl_and_account_lookups_decode(sv: int) -> None:
    calls = decoded(
        sv,
        mk.pnl(sv, 1, 12.5, 100.25, 0.0),
        mk.pnl_single(sv, 2, "100", 1.5, 3.25, 0.0, 19010.0),
        mk.symbol_samples(sv, 3, [(265598, "AAPL", "STK", "NASDAQ", "USD", ["OPT", "WAR"], "APPLE INC")]),
        mk.sec_def_opt_params(4, "SMART", 265598, "AAPL", "100", ["20261218"], [190.0, 195.0]),
        mk.sec_def_opt_params_end(4),
        mk.head_timestamp(5, "19801212-14:30:00"),
        mk.position_multi(6, "DU1234567", [265598, "AAPL", "STK", "", 0.0, "", "", "NASDAQ", "USD", "AAPL", "NMS"],
                          "100", 150.25, ""),
        mk.position_multi_end(6),
        mk.family_codes([("DU1234567", "")]),
        mk.user_info(7, ""),
        mk.market_rule(26, [(0.0, 0.01)]),
        mk.mkt_depth_exchanges([("ISLAND", "STK", "NASDAQ", "Deep2", 7)]),
        mk.smart_components(8, [(0, "NYSE", "N")]),
        mk.soft_dollar_tiers(9),
        mk.news_providers([("BRFG", "Briefing.com General Market Columns")]),
        mk.scanner_parameters("<xml/>"),
        mk.commission_report("0000e0d5.1", 1.0, "USD"),
    )
    names = [c[0] for c in calls]
    assert names == ["pnl", "pnlSingle", "symbolSamples", "securityDefinitionOptionParameter",
                     "securityDefinitionOptionParameterEnd", "headTimestamp", "positionMulti", "positionMultiEnd",
                     "familyCodes", "userInfo", "marketRule", "mktDepthExchanges", "smartComponents",
                     "softDollarTiers", "newsProviders", "scannerParameters", "commissionAndFeesReport"]
    assert calls[0][1] == (1, 12.5, 100.25 if sv >= mk.UNREALIZED_PNL else None, 0.0)
    assert calls[1][1] == (2, Decimal("100"), 1.5, 3.25, 0.0, 19010.0)
    samples = calls[2][1][1]
    assert samples[0].contract.symbol == "AAPL" and samples[0].derivativeSecTypes == ["OPT", "WAR"]
    if sv >= mk.BOND_ISSUERID:
        assert samples[0].contract.description == "APPLE INC"
    assert calls[3][1] == (4, "SMART", 265598, "AAPL", "100", {"20261218"}, {190.0, 195.0})
    assert calls[6][1][3].conId == 265598 and calls[6][1][4] == Decimal("100")  # (reqId, account, model, contract, pos, cost)
    assert calls[16][1][0].execId == "0000e0d5.1"


# ---------------------------------------------------------------- requests


class _Conn:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def isConnected(self) -> bool:  # noqa: N802 - ibapi's name
        return True

    def sendMsg(self, msg: bytes) -> None:  # noqa: N802 - ibapi's name
        self.sent.append(msg)


def _sent(sv: int, call: Any) -> list[str]:
    client = EClient(Calls())
    client.serverVersion_ = sv
    client.connState = EClient.CONNECTED
    client.conn = _Conn()
    client.clientId = 7
    call(client)
    (frame,) = client.conn.sent
    (payload,) = FrameReader().feed(frame)
    return split_fields(payload)


def _aapl() -> IbContract:
    c = IbContract()
    c.conId, c.symbol, c.secType, c.exchange, c.primaryExchange, c.currency = (
        265598, "AAPL", "STK", "SMART", "NASDAQ", "USD")
    return c


@pytest.mark.parametrize("sv", [157, 176, 178, 200])
def test_request_layouts_match_the_official_client(sv: int) -> None:
    """The names the mock reads sit where ibapi's EClient writes the values."""
    msg = decode_request(_sent(sv, lambda c: c.reqContractDetails(11, _aapl())))
    f = msg.fields
    assert (msg.int("req_id"), f["con_id"], f["symbol"], f["sec_type"], f["exchange"], f["currency"]) == (
        11, "265598", "AAPL", "STK", "SMART", "USD")
    msg = decode_request(_sent(sv, lambda c: c.reqMktData(12, _aapl(), "", True, False, [])))
    assert (msg.int("req_id"), msg.fields["symbol"], msg.fields["snapshot"], msg.fields["generic_ticks"]) == (
        12, "AAPL", "1", "")
    msg = decode_request(_sent(sv, lambda c: c.reqHistoricalData(13, _aapl(), "20261204 16:00:00 US/Eastern",
                                                                 "2 D", "5 mins", "MIDPOINT", 1, 1, False, [])))
    f = msg.fields
    assert (msg.int("req_id"), f["symbol"], f["end_date_time"], f["bar_size"], f["duration"], f["what_to_show"],
            f["use_rth"], f["format_date"], f["keep_up_to_date"]) == (
        13, "AAPL", "20261204 16:00:00 US/Eastern", "5 mins", "2 D", "MIDPOINT", "1", "1", "0")
    msg = decode_request(_sent(sv, lambda c: c.reqHeadTimeStamp(14, _aapl(), "TRADES", 1, 2)))
    assert (msg.int("req_id"), msg.fields["what_to_show"], msg.fields["format_date"]) == (14, "TRADES", "2")
    msg = decode_request(_sent(sv, lambda c: c.reqSecDefOptParams(15, "AAPL", "", "STK", 265598)))
    assert (msg.int("req_id"), msg.fields["underlying_symbol"], msg.fields["underlying_con_id"]) == (
        15, "AAPL", "265598")
    msg = decode_request(_sent(sv, lambda c: c.reqMatchingSymbols(16, "AA")))
    assert (msg.int("req_id"), msg.fields["pattern"]) == (16, "AA")
    msg = decode_request(_sent(sv, lambda c: c.reqPnL(17, "DU1234567", "")))
    assert (msg.int("req_id"), msg.fields["account"]) == (17, "DU1234567")
    msg = decode_request(_sent(sv, lambda c: c.reqPnLSingle(18, "DU1234567", "", 265598)))
    assert (msg.int("req_id"), msg.fields["account"], msg.fields["con_id"]) == (18, "DU1234567", "265598")
    msg = decode_request(_sent(sv, lambda c: c.reqPositionsMulti(19, "DU1234567", "")))
    assert (msg.int("req_id"), msg.fields["account"]) == (19, "DU1234567")
    if sv >= 166:  # MIN_SERVER_VER_USER_INFO
        msg = decode_request(_sent(sv, lambda c: c.reqUserInfo(20)))
        assert msg.int("req_id") == 20
    msg = decode_request(_sent(sv, lambda c: c.cancelMktData(21)))
    assert msg.int("req_id") == 21


def _official_fields(type_name: str) -> dict[int, tuple[str, int]]:
    module = importlib.import_module(f"ibapi.protobuf.{type_name}_pb2")
    descriptor = module.DESCRIPTOR.message_types_by_name[type_name]
    return {f.number: (f.name, f.type) for f in descriptor.fields}


_TYPES = {"int32": 5, "int64": 3, "bool": 8, "double": 1, "string": 9}


@pytest.mark.parametrize("out_id", sorted(mk.PROTO_REQUESTS))
def test_partial_protobuf_requests_match_the_official_descriptors(out_id: int) -> None:
    """Each declared field has the official number, name and type (the rest are skipped on decode)."""
    pytest.importorskip("google.protobuf")
    mtype = mk.PROTO_REQUESTS[out_id]
    official = _official_fields(mtype.name)
    for f in mtype.fields:
        name, ftype = official[f.number]
        assert name == f.name
        if f.is_message:
            assert ftype == 11
            nested = _official_fields(f.type.name)  # type: ignore[union-attr]
            for g in f.type.fields:  # type: ignore[union-attr]
                assert nested[g.number] == (g.name, _TYPES[g.type_name])
        else:
            assert ftype == _TYPES[f.type_name]


def test_protobuf_gates_match_get_server_version_for_message() -> None:
    for out_id, gate in mk.PROTO_GATES.items():
        assert getServerVersionForMessage(out_id) == gate, out_id


def test_bars_are_deterministic_for_any_accepted_size() -> None:
    for size, seconds in BAR_SIZES.items():
        duration = f"{max(1, seconds * 5 // 86400)} D" if seconds >= 86400 else f"{seconds * 5} S"
        if seconds >= 604800:
            duration = "1 Y"
        req = parse_request(AAPL, "20261204 16:00:00", size, duration, "TRADES", "1")
        first, again = bars(AAPL, req), bars(AAPL, req)
        assert first == again and first, size
        assert all(low <= min(o, c) and high >= max(o, c) for _, o, high, low, c, *_ in first), size
    assert isinstance(req, BarRequest)


def test_position_multi_in_protobuf_reaches_the_official_decoder() -> None:
    """reqPositionsMulti's replies are protobuf from 207 (its family's gate): the mock's bytes
    decode through ibapi's protobuf handlers to the same callbacks."""
    from harness.protocol.era import Form
    from harness.protocol.wire import encode_in_form
    from harness.protocol.wire_id import MSG_ID

    fields = mk.position_multi(6, "DU1234567", [265598, "AAPL", "STK", "", 0.0, "", "", "NASDAQ", "USD", "AAPL",
                                                "NMS"], "100", 150.25, "")
    wrapper = Calls()
    decoder = Decoder(wrapper, 226)
    for message in (fields, mk.position_multi_end(6)):
        frame, _ = encode_in_form(Form.PROTOBUF, 226, message, from_client=False)
        (payload,) = FrameReader().feed(frame)
        wire_id = MSG_ID.unpack_from(payload)[0]
        decoder.processProtoBuf(payload[MSG_ID.size:], wire_id - 200)
    assert [c[0] for c in wrapper.calls] == ["positionMulti", "positionMultiEnd"]
    req_id, account, model, contract, position, cost = wrapper.calls[0][1]
    assert (req_id, account, contract.conId, contract.exchange, position, cost) == (
        6, "DU1234567", 265598, "NASDAQ", Decimal("100"), 150.25)


@pytest.mark.parametrize("sv", VERSIONS)
def test_historical_data_update_decodes(sv: int) -> None:
    req = parse_request(AAPL, "20261204 16:00:00", "1 min", "60 S", "TRADES", "1")
    (bar,) = bars(AAPL, req)
    wrapper = Calls()
    Decoder(wrapper, sv).interpret(comm.read_fields(encode_fields(mk.historical_data_update(4, bar)[1:])), 90)
    (name, (req_id, got)), = wrapper.calls
    assert (req_id, got.date, got.open, got.high, got.low, got.close, got.barCount) == (
        4, bar[0], bar[1], bar[2], bar[3], bar[4], bar[7])


def _proto_decoded(sv: int, *messages: list[Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """The mock's protobuf form of each message through ibapi's protobuf handlers."""
    from harness.protocol.era import Form
    from harness.protocol.wire import encode_in_form
    from harness.protocol.wire_id import MSG_ID

    wrapper = Calls()
    decoder = Decoder(wrapper, sv)
    for fields in messages:
        frame, _ = encode_in_form(Form.PROTOBUF, sv, fields, from_client=False)
        (payload,) = FrameReader().feed(frame)
        decoder.processProtoBuf(payload[MSG_ID.size:], MSG_ID.unpack_from(payload)[0] - 200)
    return wrapper.calls


def _shown(value: Any) -> Any:
    if not hasattr(value, "__dict__"):
        return value
    if getattr(value, "secIdList", None) == []:
        value.secIdList = None  # the text decoder leaves an empty list None, the protobuf one []
    return str(value)


def _same(text_calls: list[tuple[str, tuple[Any, ...]]], proto_calls: list[tuple[str, tuple[Any, ...]]]) -> None:
    assert [c[0] for c in proto_calls] == [c[0] for c in text_calls]
    for (name, a), (_, b) in zip(text_calls, proto_calls):
        assert [_shown(x) for x in a] == [_shown(x) for x in b], name


@pytest.mark.parametrize("sv", [205, 213, 226])
def test_protobuf_replies_decode_as_their_text_forms(sv: int) -> None:
    """From each family's gate the mock may send these as protobuf: ibapi's protobuf
    handlers must produce the same callbacks, with the same values, as the text form."""
    option = InstrumentBook.default().instruments[-1]
    req = parse_request(AAPL, "20261204 16:00:00", "1 hour", "1 D", "TRADES", "1")
    rows = bars(AAPL, req)
    q = quote(AAPL, now=1_765_000_000)
    messages = [
        mk.contract_data(sv, 7, AAPL.details()), mk.contract_data(sv, 7, ES.details()),
        mk.contract_data(sv, 7, option.details()), mk.contract_data_end(7),
        mk.historical_data(sv, 3, "s", "e", rows), mk.historical_data_end(3, "s", "e"),
        mk.historical_data_update(3, rows[-1]), mk.head_timestamp(5, "19801212-14:30:00"),
        mk.tick_req_params(5, 0.01, "9c0001", 3), mk.market_data_type(5, 3),
        mk.tick_price(5, 66, q.bid, q.bid_size), mk.tick_size(5, 74, q.volume), mk.tick_snapshot_end(5),
        mk.pnl(sv, 1, 12.5, 100.25, 0.0), mk.pnl_single(sv, 2, "100", 1.5, 3.25, 0.0, 19010.0),
    ]
    text = decoded(sv, *messages)
    proto = _proto_decoded(sv, *messages)
    assert {name for name, _ in text} >= {"contractDetails", "contractDetailsEnd", "historicalData",
                                          "historicalDataEnd", "historicalDataUpdate", "headTimestamp",
                                          "tickReqParams", "marketDataType", "tickPrice", "tickSize",
                                          "tickSnapshotEnd", "pnl", "pnlSingle"}
    _same(text, proto)


@pytest.mark.parametrize("out_id", sorted(mk.PROTO_REPLIES))
def test_partial_protobuf_replies_match_the_official_descriptors(out_id: int) -> None:
    pytest.importorskip("google.protobuf")
    mtype = mk.PROTO_REPLIES[out_id]
    official = _official_fields(mtype.name)
    for f in mtype.fields:
        name, ftype = official[f.number]
        assert name == f.name
        if f.is_message:
            nested = _official_fields(f.type.name)  # type: ignore[union-attr]
            for g in f.type.fields:  # type: ignore[union-attr]
                assert nested[g.number] == (g.name, _TYPES[g.type_name]), (f.name, g.name)
        else:
            assert ftype == _TYPES[f.type_name], f.name
