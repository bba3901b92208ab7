"""Unit tests of the message layouts (harness/protocol/messages.py).

Both real clients drop a message whose field count is off by one, so the
strongest check is to hand what our encoders produce to the real decoders:
the official client's `ibapi.decoder.Decoder` (10.x, every server version
the text protocol covers) and ib_async's `Decoder` (its own range, 157..178),
exactly the way their socket loops do, and assert the callback fired with
the right values. Proc-style ibapi handlers read fields from an iterator and
ignore a surplus, so those are also driven directly with an iterator that
must be exhausted afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timezone
from decimal import Decimal
from enum import Enum
from types import SimpleNamespace
from typing import Any

import pytest
from ib_async.decoder import Decoder as AsyncDecoder
from ibapi import comm
from ibapi.client import EClient
from ibapi.decoder import Decoder
from ibapi.execution import ExecutionFilter
from ibapi.utils import BadMessage
from ibapi.wrapper import EWrapper

from harness.protocol import FrameReader, decode_reply, decode_request, encode_message, split_fields
from harness.protocol import messages as m
from harness.protocol.framing import Field, field_text
from harness.protocol.messages import Contract, Execution, In, Out

SERVER_VERSIONS = [157, 165, 166, 177, 178, 193, 194, 197, 198, 200]
IB_ASYNC_VERSIONS = [v for v in SERVER_VERSIONS if 157 <= v <= 178]  # ib_async offers v157..178

AAPL = Contract(265598, "AAPL", "STK", "USD", exchange="", primary_exchange="NASDAQ", local_symbol="AAPL",
                trading_class="NMS")
SPY_CALL = Contract(654321987, "SPY", "OPT", "USD", exchange="SMART", primary_exchange="AMEX",
                    local_symbol="SPY   261218C00450000", trading_class="SPY", last_trade_date="20261218",
                    strike=450.0, right="C", multiplier="100")
FILL = Execution("0000e0d5.6601a2b3.01.01", 11, AAPL, "20261125 09:31:02", "DU1234567", "BOT", 50, 150.10,
                 1_900_000_001, client_id=1, order_ref="ref-1", model_code="", last_liquidity=2)
ODD_FILL = Execution("0000e0d5.6601a2b4.01.01", 12, SPY_CALL, "20261125 10:02:47 US/Eastern", "DU1234567", "SLD",
                     2.5, 3.45, 1_900_000_002, client_id=7, exchange="CBOE")


# ---------------------------------------------------------------- helpers


def wire(fields: list[Field]) -> bytes:
    """Fields -> framed bytes -> the single payload a reader sees."""
    (payload,) = FrameReader().feed(encode_message(fields))
    return payload


class RecordingWrapper(EWrapper):
    """An EWrapper that records the callbacks the decoder makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []


def _recorder(name: str) -> Callable[..., None]:
    def method(self: RecordingWrapper, *args: Any) -> None:
        self.calls.append((name, args))
    method.__name__ = name
    return method


for _name in ("error", "nextValidId", "managedAccounts", "position", "positionEnd", "updateAccountValue",
              "updatePortfolio", "updateAccountTime", "accountDownloadEnd", "execDetails", "execDetailsEnd",
              "currentTime", "currentTimeInMillis", "accountSummary", "accountSummaryEnd", "accountUpdateMulti",
              "accountUpdateMultiEnd", "openOrderEnd", "completedOrdersEnd"):
    setattr(RecordingWrapper, _name, _recorder(_name))


def ibapi_decode(server_version: int, fields: list[Field]) -> list[tuple[str, tuple[Any, ...]]]:
    """Feed one message to ibapi 10.x the way EClient.run does below 201: strip
    the text msg id, read_fields the rest, interpret(fields, msgId)."""
    payload = wire(fields)
    cut = payload.index(b"\0")
    msg_id = int(payload[:cut])
    wrapper = RecordingWrapper()
    decoder = Decoder(wrapper, server_version)
    decoder.interpret(comm.read_fields(payload[cut + 1:]), msg_id)
    handle = decoder.msgId2handleInfo[msg_id]
    if handle.processMeth is not None:
        # interpret() tolerates surplus fields; a real layout has none.
        it = iter(comm.read_fields(payload[cut + 1:]))
        handle.processMeth(decoder, it)
        surplus = list(it)
        assert not surplus, f"ibapi left {len(surplus)} unread field(s) at {server_version}: {surplus}"
        assert _plain(wrapper.calls[0]) == _plain(wrapper.calls[1]), "two decodes of one message disagree"
        del wrapper.calls[1]
    return wrapper.calls


def _plain(value: Any) -> Any:
    """Contract/Execution objects have no __eq__: compare their attributes."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "__dict__") and not isinstance(value, Enum):
        return {k: _plain(v) for k, v in vars(value).items()}
    return value


def only_call(server_version: int, fields: list[Field], name: str) -> tuple[Any, ...]:
    calls = ibapi_decode(server_version, fields)
    assert [c[0] for c in calls] == [name], f"ibapi made {calls} for {fields} at {server_version}"
    return calls[0][1]


class AsyncRecorder:
    """Stands in for ib_async's Wrapper: records every callback."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.ib = SimpleNamespace(TimezoneTWS=None)
        self.defaultTimezone = timezone.utc

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))


def ib_async_call(server_version: int, fields: list[Field], name: str,
                  caplog: pytest.LogCaptureFixture) -> tuple[Any, ...]:
    """ib_async's client splits the payload and pops the trailing empty
    element, then Decoder.interpret(fields) logs (never raises) on a bad layout."""
    text = wire(fields).decode(errors="backslashreplace").split("\0")
    text.pop()
    recorder = AsyncRecorder()
    decoder = AsyncDecoder(recorder, server_version)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="ib_async.Decoder"):
        caplog.clear()
        decoder.interpret(text)
    errors = [r.getMessage() for r in caplog.records if r.name == "ib_async.Decoder"]
    assert not errors, errors
    assert [c[0] for c in recorder.calls] == [name], recorder.calls
    return recorder.calls[0][1]


# ---------------------------------------------------------------- field counts


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_error_layout_by_version(sv: int) -> None:
    fields = m.error(sv, 7, 2104, "Market data farm connection is OK:usfarm", error_time_ms=1764000000123)
    assert fields[0] == In.ERR_MSG
    if sv < 166:
        assert fields == [4, 2, 7, 2104, "Market data farm connection is OK:usfarm"]
    elif sv < 194:
        assert fields == [4, 2, 7, 2104, "Market data farm connection is OK:usfarm", ""]
    else:
        assert fields == [4, 7, 2104, "Market data farm connection is OK:usfarm", "", 1764000000123]


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_exec_details_layout_by_version(sv: int) -> None:
    fields = m.exec_details(sv, 5, FILL)
    expected = 31 + (sv >= 178) + (sv >= 198)
    assert len(fields) == expected
    assert fields[:3] == [In.EXECUTION_DATA, 5, 11]  # no version field since server 136


def test_fixed_layout_field_counts() -> None:
    assert len(m.position("DU1", AAPL, "100", 150.25)) == 16
    assert len(m.portfolio_value(AAPL, "100", 190.1, 19010.0, 150.25, 3985.0, 0.0, "DU1")) == 20
    assert m.next_valid_id(5) == [9, 1, 5]
    assert m.managed_accounts(["DU1", "DU2"]) == [15, 1, "DU1,DU2"]
    assert m.current_time(1764000000) == [49, 1, 1764000000]
    assert m.current_time_in_millis(1764000000123) == [109, 1764000000123]
    assert m.account_value("NetLiquidation", "1.00", "USD", "DU1") == [6, 2, "NetLiquidation", "1.00", "USD", "DU1"]
    assert m.account_time("09:31") == [8, 1, "09:31"]
    assert m.account_download_end("DU1") == [54, 1, "DU1"]
    assert m.position_end() == [62, 1]
    assert m.open_order_end() == [53, 1]
    assert m.completed_orders_end() == [102]
    assert m.exec_details_end(5) == [55, 1, 5]
    assert m.account_summary(3, "DU1", "NetLiquidation", "1.00", "USD") == [63, 1, 3, "DU1", "NetLiquidation",
                                                                           "1.00", "USD"]
    assert m.account_summary_end(3) == [64, 1, 3]
    assert len(m.account_update_multi(4, "DU1", "", "NetLiquidation", "1.00", "USD")) == 8
    assert m.account_update_multi_end(4) == [74, 1, 4]


def test_portfolio_carries_primary_exchange_not_exchange() -> None:
    fields = m.portfolio_value(SPY_CALL, "2", 5.0, 1000.0, 345.0, 310.0, 0.0, "DU1")
    assert fields[9] == "AMEX" and "SMART" not in fields


def test_quantity_text() -> None:
    assert m.quantity_text(100.0) == "100"
    assert m.quantity_text(100) == "100"
    assert m.quantity_text(-20.0) == "-20"
    assert m.quantity_text(2.5) == "2.5"
    assert m.quantity_text(0.0001) == "0.0001"


# ---------------------------------------------------------------- our own decoder


def _all_replies(sv: int) -> list[list[Field]]:
    return [
        m.next_valid_id(1001), m.managed_accounts(["DU1234567", "DU7654321"]), m.current_time(1764000000),
        m.current_time_in_millis(1764000000123), m.error(sv, -1, 2158, "Sec-def data farm connection is OK:secdefnj",
                                                         error_time_ms=1764000000123),
        m.position("DU1234567", SPY_CALL, "-2", 345.5), m.position_end(),
        m.account_value("CashBalance", "1000000.00", "USD", "DU1234567"),
        m.portfolio_value(AAPL, "100", 190.1, 19010.0, 150.25, 3985.0, 0.0, "DU1234567"),
        m.account_time("09:31"), m.account_download_end("DU1234567"), m.open_order_end(),
        m.completed_orders_end(), m.exec_details(sv, 5, FILL), m.exec_details(sv, 5, ODD_FILL),
        m.exec_details_end(5), m.account_summary(3, "DU1234567", "NetLiquidation", "1.00", "USD"),
        m.account_summary_end(3), m.account_update_multi(4, "DU1234567", "", "NetLiquidation", "1.00", "USD"),
        m.account_update_multi_end(4),
    ]


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_round_trip_through_own_decoder(sv: int) -> None:
    for fields in _all_replies(sv):
        raw = split_fields(wire(fields))
        assert raw == [field_text(f) for f in fields]
        msg = decode_reply(sv, raw)
        assert msg.msg_id == fields[0]
        assert msg.name == m.message_name(int(fields[0]), from_client=False)
        assert not msg.name.startswith("msg"), msg.name
        assert msg.raw == raw[1:]
        if msg.msg_id != In.EXECUTION_DATA:  # execDetails names its first 20 fields only
            assert "extra" not in msg.fields, (msg.name, msg.fields)


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_decode_reply_names_error_fields(sv: int) -> None:
    msg = decode_reply(sv, split_fields(wire(m.error(sv, 12, 321, "bad", error_time_ms=99))))
    assert msg.name == "error"
    assert msg.int("req_id") == 12 and msg.int("code") == 321 and msg.fields["message"] == "bad"
    assert ("version" in msg.fields) == (sv < 194)
    assert ("reject_json" in msg.fields) == (sv >= 166)
    assert ("error_time" in msg.fields) == (sv >= 194)
    assert "extra" not in msg.fields


def test_decode_reply_named_fields() -> None:
    msg = decode_reply(178, split_fields(wire(m.position("DU1", SPY_CALL, "-2", 345.5))))
    assert msg.fields["account"] == "DU1"
    assert msg.int("con_id") == SPY_CALL.con_id
    assert msg.fields["strike"] == "450.0" and msg.fields["right"] == "C" and msg.fields["multiplier"] == "100"
    assert msg.fields["exchange"] == "SMART" and msg.fields["position"] == "-2"
    assert float(msg.fields["avg_cost"]) == 345.5
    msg = decode_reply(178, split_fields(wire(m.exec_details(178, 5, FILL))))
    assert msg.int("req_id") == 5 and msg.int("order_id") == 11 and msg.fields["exec_id"] == FILL.exec_id
    assert msg.fields["shares"] == "50" and msg.fields["side"] == "BOT"
    assert len(msg.fields["extra"]) == 11  # permId .. pendingPriceRevision


def test_message_int_tolerates_empty_and_rejects_text() -> None:
    msg = decode_reply(178, ["9", "1", ""])
    assert msg.int("order_id", default=-5) == -5
    msg = decode_reply(178, ["9", "1", "x"])
    with pytest.raises(m.ProtocolError, match="order_id='x' is not an integer"):
        msg.int("order_id")


def test_unknown_reply_id_decodes_unnamed() -> None:
    msg = decode_reply(178, ["999", "1", "a"])
    assert msg.name == "msg999" and msg.fields == {"extra": ["1", "a"]}


# ---------------------------------------------------------------- the official client (ibapi 10.x)


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ibapi_error(sv: int) -> None:
    text = "Market data farm connection is OK:usfarm"
    args = only_call(sv, m.error(sv, -1, 2104, text, error_time_ms=1764000000123), "error")
    assert args == (-1, 1764000000123 if sv >= 194 else 0, 2104, text, "")


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ibapi_error_with_reject_json_and_non_ascii(sv: int) -> None:
    fields = m.error(sv, 42, 201, "Order rejected - Zürich", reject_json='{"rejectReason":"x"}', error_time_ms=5)
    args = only_call(sv, fields, "error")
    assert args[0] == 42 and args[2] == 201
    assert args[3] == "Order rejected - Zürich"  # backslash-escaped on the wire, unicode-escape decoded
    assert args[4] == ('{"rejectReason":"x"}' if sv >= 166 else "")


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ibapi_next_valid_id(sv: int) -> None:
    assert only_call(sv, m.next_valid_id(1001), "nextValidId") == (1001,)


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ibapi_managed_accounts(sv: int) -> None:
    assert only_call(sv, m.managed_accounts(["DU1234567", "DU7654321"]), "managedAccounts") == (
        "DU1234567,DU7654321",)


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ibapi_current_time(sv: int) -> None:
    assert only_call(sv, m.current_time(1764000000), "currentTime") == (1764000000,)


@pytest.mark.parametrize("sv", [v for v in SERVER_VERSIONS if v >= 197])
def test_ibapi_current_time_in_millis(sv: int) -> None:
    assert only_call(sv, m.current_time_in_millis(1764000000123), "currentTimeInMillis") == (1764000000123,)


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
@pytest.mark.parametrize("contract, quantity", [(AAPL, "100"), (SPY_CALL, "-2"), (AAPL, "0.5")])
def test_ibapi_position(sv: int, contract: Contract, quantity: str) -> None:
    account, c, position, avg_cost = only_call(sv, m.position("DU1234567", contract, quantity, 150.25), "position")
    assert account == "DU1234567"
    assert (c.conId, c.symbol, c.secType, c.lastTradeDateOrContractMonth, c.strike, c.right, c.multiplier,
            c.exchange, c.currency, c.localSymbol, c.tradingClass) == (
        contract.con_id, contract.symbol, contract.sec_type, contract.last_trade_date, contract.strike,
        contract.right, contract.multiplier, contract.exchange, contract.currency, contract.local_symbol,
        contract.trading_class)
    assert position == Decimal(quantity)
    assert avg_cost == 150.25


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ibapi_update_account_value(sv: int) -> None:
    fields = m.account_value("NetLiquidation", "1027435.00", "USD", "DU1234567")
    assert only_call(sv, fields, "updateAccountValue") == ("NetLiquidation", "1027435.00", "USD", "DU1234567")
    fields = m.account_value("AccountCode", "DU1234567", "", "DU1234567")  # empty currency field
    assert only_call(sv, fields, "updateAccountValue") == ("AccountCode", "DU1234567", "", "DU1234567")


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ibapi_update_portfolio(sv: int) -> None:
    fields = m.portfolio_value(SPY_CALL, "-2", 5.25, -1050.0, 345.5, -359.0, 12.5, "DU1234567")
    c, position, price, value, cost, unreal, real, account = only_call(sv, fields, "updatePortfolio")
    assert (c.conId, c.symbol, c.secType, c.lastTradeDateOrContractMonth, c.strike, c.right, c.multiplier,
            c.primaryExchange, c.currency, c.localSymbol, c.tradingClass) == (
        SPY_CALL.con_id, "SPY", "OPT", "20261218", 450.0, "C", "100", "AMEX", "USD", SPY_CALL.local_symbol, "SPY")
    assert c.exchange == ""  # the portfolio message carries primaryExchange only
    assert (position, price, value, cost, unreal, real, account) == (
        Decimal("-2"), 5.25, -1050.0, 345.5, -359.0, 12.5, "DU1234567")


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
@pytest.mark.parametrize("fill", [FILL, ODD_FILL], ids=["stock", "option-fractional"])
def test_ibapi_exec_details(sv: int, fill: Execution) -> None:
    req_id, c, e = only_call(sv, m.exec_details(sv, 5, fill), "execDetails")
    assert req_id == 5
    assert (c.conId, c.symbol, c.secType, c.strike, c.right, c.multiplier, c.exchange, c.localSymbol,
            c.tradingClass) == (fill.contract.con_id, fill.contract.symbol, fill.contract.sec_type,
                                fill.contract.strike, fill.contract.right, fill.contract.multiplier,
                                fill.contract.exchange, fill.contract.local_symbol, fill.contract.trading_class)
    assert (e.orderId, e.execId, e.time, e.acctNumber, e.exchange, e.side, e.price, e.permId, e.clientId) == (
        fill.order_id, fill.exec_id, fill.time, fill.account, fill.exchange, fill.side, fill.price, fill.perm_id,
        fill.client_id)
    assert e.shares == Decimal(str(fill.shares)) and e.cumQty == e.shares and e.avgPrice == fill.price
    assert e.orderRef == fill.order_ref and e.lastLiquidity == fill.last_liquidity
    assert e.pendingPriceRevision is False


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ibapi_account_summary(sv: int) -> None:
    fields = m.account_summary(9001, "DU1234567", "NetLiquidation", "1027435.00", "USD")
    assert only_call(sv, fields, "accountSummary") == (9001, "DU1234567", "NetLiquidation", "1027435.00", "USD")
    assert only_call(sv, m.account_summary_end(9001), "accountSummaryEnd") == (9001,)


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ibapi_account_update_multi(sv: int) -> None:
    fields = m.account_update_multi(9002, "DU1234567", "", "CashBalance", "1000000.00", "BASE")
    assert only_call(sv, fields, "accountUpdateMulti") == (9002, "DU1234567", "", "CashBalance", "1000000.00",
                                                          "BASE")
    assert only_call(sv, m.account_update_multi_end(9002), "accountUpdateMultiEnd") == (9002,)


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_ibapi_end_markers_and_account_time(sv: int) -> None:
    assert only_call(sv, m.position_end(), "positionEnd") == ()
    assert only_call(sv, m.open_order_end(), "openOrderEnd") == ()
    assert only_call(sv, m.completed_orders_end(), "completedOrdersEnd") == ()
    assert only_call(sv, m.exec_details_end(5), "execDetailsEnd") == (5,)
    assert only_call(sv, m.account_download_end("DU1234567"), "accountDownloadEnd") == ("DU1234567",)
    assert only_call(sv, m.account_time("09:31"), "updateAccountTime") == ("09:31",)


def test_ibapi_cross_check_has_teeth() -> None:
    """The checker itself must catch a wrong layout, or the tests above prove nothing."""
    # a 157-style error (5 fields) read at 178: ibapi needs advancedOrderRejectJson
    # (BadMessage inside; interpret()'s handler then fails joining bytes, as
    # wire-protocol.md section 3 describes: EClient.run would end its loop)
    with pytest.raises((BadMessage, TypeError)):
        ibapi_decode(178, m.error(157, -1, 2104, "x"))
    # a 178-style error read at 194: the version field is taken as the reqId
    assert only_call(194, m.error(178, 7, 2104, "x"), "error")[0] != 7
    # a surplus field on a proc-style message
    with pytest.raises(AssertionError, match="unread field"):
        ibapi_decode(178, [*m.position("DU1", AAPL, "1", 1.0), "surplus"])
    # a surplus field on a wrap-style message: the callback is silently dropped
    assert ibapi_decode(178, [*m.next_valid_id(1), "surplus"]) == []
    # execDetails from 198 read at 178
    with pytest.raises(AssertionError, match="unread field"):
        ibapi_decode(178, m.exec_details(198, 5, FILL))


# ---------------------------------------------------------------- ib_async (its range: 157..178)


@pytest.mark.parametrize("sv", IB_ASYNC_VERSIONS)
def test_ib_async_error(sv: int, caplog: pytest.LogCaptureFixture) -> None:
    args = ib_async_call(sv, m.error(sv, -1, 2104, "farm OK", reject_json="{}"), "error", caplog)
    assert args == (-1, 2104, "farm OK", "{}" if sv >= 166 else "")


@pytest.mark.parametrize("sv", IB_ASYNC_VERSIONS)
def test_ib_async_startup_and_simple_messages(sv: int, caplog: pytest.LogCaptureFixture) -> None:
    assert ib_async_call(sv, m.next_valid_id(1001), "nextValidId", caplog) == (1001,)
    assert ib_async_call(sv, m.managed_accounts(["DU1", "DU2"]), "managedAccounts", caplog) == ("DU1,DU2",)
    assert ib_async_call(sv, m.current_time(1764000000), "currentTime", caplog) == (1764000000,)
    assert ib_async_call(sv, m.account_value("NetLiquidation", "1.00", "USD", "DU1"), "updateAccountValue",
                         caplog) == ("NetLiquidation", "1.00", "USD", "DU1")
    assert ib_async_call(sv, m.account_summary(3, "DU1", "NetLiquidation", "1.00", "USD"), "accountSummary",
                         caplog) == (3, "DU1", "NetLiquidation", "1.00", "USD")
    assert ib_async_call(sv, m.account_update_multi(4, "DU1", "", "k", "v", "USD"), "accountUpdateMulti",
                         caplog) == (4, "DU1", "", "k", "v", "USD")
    assert ib_async_call(sv, m.account_download_end("DU1"), "accountDownloadEnd", caplog) == ("DU1",)


@pytest.mark.parametrize("sv", IB_ASYNC_VERSIONS)
def test_ib_async_position(sv: int, caplog: pytest.LogCaptureFixture) -> None:
    account, c, position, avg_cost = ib_async_call(sv, m.position("DU1", SPY_CALL, "-2", 345.5), "position", caplog)
    assert (account, c.conId, c.strike, c.right, c.exchange, position, avg_cost) == (
        "DU1", SPY_CALL.con_id, 450.0, "C", "SMART", -2.0, 345.5)


@pytest.mark.parametrize("sv", IB_ASYNC_VERSIONS)
def test_ib_async_portfolio(sv: int, caplog: pytest.LogCaptureFixture) -> None:
    fields = m.portfolio_value(AAPL, "100", 190.1, 19010.0, 150.25, 3985.0, 0.0, "DU1")
    c, position, price, value, cost, unreal, real, account = ib_async_call(sv, fields, "updatePortfolio", caplog)
    assert (c.conId, c.primaryExchange, position, price, value, cost, unreal, real, account) == (
        AAPL.con_id, "NASDAQ", 100.0, 190.1, 19010.0, 150.25, 3985.0, 0.0, "DU1")


@pytest.mark.parametrize("sv", IB_ASYNC_VERSIONS)
def test_ib_async_exec_details(sv: int, caplog: pytest.LogCaptureFixture) -> None:
    req_id, c, e = ib_async_call(sv, m.exec_details(sv, 5, FILL), "execDetails", caplog)
    assert (req_id, c.conId, e.orderId, e.execId, e.side, e.shares, e.price, e.permId, e.clientId) == (
        5, AAPL.con_id, 11, FILL.exec_id, "BOT", 50.0, 150.10, FILL.perm_id, 1)
    assert e.time.year == 2026 and e.time.tzinfo is not None


def test_ib_async_cross_check_has_teeth(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(AssertionError):
        ib_async_call(178, [*m.position("DU1", AAPL, "1", 1.0), "surplus"], "position", caplog)


# ---------------------------------------------------------------- requests: ours vs the official client


class _FakeConn:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def isConnected(self) -> bool:  # noqa: N802 - ibapi's name
        return True

    def sendMsg(self, msg: bytes) -> None:  # noqa: N802 - ibapi's name
        self.sent.append(msg)


def _ibapi_request(sv: int, call: Callable[[EClient], None]) -> list[str]:
    client = EClient(RecordingWrapper())
    client.serverVersion_ = sv
    client.connState = EClient.CONNECTED
    client.conn = _FakeConn()
    client.clientId = 7
    call(client)
    (frame,) = client.conn.sent
    (payload,) = FrameReader().feed(frame)
    return split_fields(payload)


def _ours(fields: list[Field]) -> list[str]:
    return split_fields(wire(fields))


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_requests_match_the_official_client(sv: int) -> None:
    assert _ours(m.req_ids(1)) == _ibapi_request(sv, lambda c: c.reqIds(1))
    assert _ours(m.req_managed_accts()) == _ibapi_request(sv, lambda c: c.reqManagedAccts())
    assert _ours(m.req_current_time()) == _ibapi_request(sv, lambda c: c.reqCurrentTime())
    assert _ours(m.req_positions()) == _ibapi_request(sv, lambda c: c.reqPositions())
    assert _ours(m.req_open_orders()) == _ibapi_request(sv, lambda c: c.reqOpenOrders())
    assert _ours(m.req_completed_orders(False)) == _ibapi_request(sv, lambda c: c.reqCompletedOrders(False))
    assert _ours(m.req_account_updates(True, "DU1234567")) == _ibapi_request(
        sv, lambda c: c.reqAccountUpdates(True, "DU1234567"))
    assert _ours(m.req_account_summary(9001, "All", "NetLiquidation,BuyingPower")) == _ibapi_request(
        sv, lambda c: c.reqAccountSummary(9001, "All", "NetLiquidation,BuyingPower"))
    ours_exec = _ours(m.req_executions(sv, 9003))
    theirs_exec = _ibapi_request(sv, lambda c: c.reqExecutions(9003, ExecutionFilter()))
    assert len(ours_exec) == len(theirs_exec) == (12 if sv >= 200 else 10)
    # ibapi's default filter sends lastNDays unset (2147483647) at 200; ours sends 0. Same shape otherwise.
    assert ours_exec[:10] == theirs_exec[:10]
    if sv >= 200:
        assert theirs_exec[10:] == ["2147483647", "0"] and ours_exec[11] == "0"


@pytest.mark.parametrize("sv", SERVER_VERSIONS)
def test_mock_decodes_the_official_clients_requests(sv: int) -> None:
    """What the mock reads: decode_request on the real client's bytes names the fields it uses."""
    msg = decode_request(_ibapi_request(sv, lambda c: c.reqAccountSummary(9001, "All", "NetLiquidation")))
    assert (msg.name, msg.int("req_id"), msg.fields["group"], msg.fields["tags"]) == (
        "reqAccountSummary", 9001, "All", "NetLiquidation")
    msg = decode_request(_ibapi_request(sv, lambda c: c.reqAccountUpdates(True, "DU1")))
    assert (msg.name, msg.fields["subscribe"], msg.fields["account"]) == ("reqAccountUpdates", "1", "DU1")
    msg = decode_request(_ibapi_request(sv, lambda c: c.reqAccountUpdatesMulti(9002, "DU1", "", True)))
    assert (msg.name, msg.int("req_id"), msg.fields["account"], msg.fields["model_code"]) == (
        "reqAccountUpdatesMulti", 9002, "DU1", "")
    msg = decode_request(_ibapi_request(sv, lambda c: c.reqExecutions(9003, ExecutionFilter())))
    assert (msg.name, msg.int("req_id"), msg.fields["account"]) == ("reqExecutions", 9003, "")
    assert "extra" not in msg.fields
    msg = decode_request(_ibapi_request(sv, lambda c: c.reqIds(3)))
    assert (msg.name, msg.int("num_ids")) == ("reqIds", 3)
    msg = decode_request(_ibapi_request(sv, lambda c: c.startApi()))
    assert (msg.name, msg.int("client_id"), msg.fields["capabilities"]) == ("startApi", 7, "")
    msg = decode_request(_ibapi_request(sv, lambda c: c.reqCompletedOrders(True)))
    assert (msg.name, msg.fields["api_only"]) == ("reqCompletedOrders", "1")
    if sv >= 197:
        msg = decode_request(_ibapi_request(sv, lambda c: c.reqCurrentTimeInMillis()))
        assert (msg.msg_id, msg.name, msg.fields) == (Out.REQ_CURRENT_TIME_IN_MILLIS, "reqCurrentTimeInMillis", {})


def test_decode_request_keeps_unknown_tail() -> None:
    msg = decode_request(["49", "1", "future", "fields"])
    assert msg.fields == {"version": "1", "extra": ["future", "fields"]}
    msg = decode_request(["998", "11", "7"])  # an id with no layout (reqMktData has one since market.py)
    assert msg.name == "msg998" and msg.fields == {"extra": ["11", "7"]}
    assert decode_request(["999"]).name == "msg999"
    with pytest.raises(m.ProtocolError, match="non-numeric message id"):
        decode_request(["x"])


def test_order_messages_are_the_account_changing_ones() -> None:
    assert Out.PLACE_ORDER in m.ORDER_MESSAGES and Out.CANCEL_ORDER in m.ORDER_MESSAGES
    assert Out.REQ_GLOBAL_CANCEL in m.ORDER_MESSAGES and Out.EXERCISE_OPTIONS in m.ORDER_MESSAGES
    assert Out.REQ_OPEN_ORDERS not in m.ORDER_MESSAGES


def test_message_names() -> None:
    assert m.message_name(61, from_client=True) == "reqPositions"
    assert m.message_name(61, from_client=False) == "position"
    assert m.message_name(4, from_client=False) == "error"
    assert m.message_name(4, from_client=True) == "cancelOrder"
    assert m.message_name(12345, from_client=True) == "msg12345"
    for member in In:
        assert not m.message_name(member, from_client=False).startswith("msg"), member
    for member in Out:
        assert not m.message_name(member, from_client=True).startswith("msg"), member
