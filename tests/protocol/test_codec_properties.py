"""Property tests (hypothesis) of the text-protocol codec, server versions 100..200.

Why properties on top of the example tests in test_protocol_*.py: the mock
encodes whatever the account model and a fault hand it, and the raw client
decodes whatever a Gateway sends. A layout that round-trips for the handful
of hand-picked values but not for an empty account, a negative id, a
float like 1e-07 or a field full of punctuation would make the mock the
flaky part. So: every message the mock encodes, at every server version in
the text era, decodes back to the same named fields; and the framing reader
gives the same frames (or the same error) for any split of a byte stream.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.protocol import (
    API_PREFIX,
    FrameReader,
    ProtocolError,
    decode_reply,
    decode_request,
    encode_hello,
    encode_message,
    encode_server_hello,
    encode_start_api,
    parse_hello,
    parse_server_hello,
    split_fields,
)
from harness.protocol import messages as m
from harness.protocol.framing import Field, field_text
from harness.protocol.messages import Contract, Execution, In, Out
from harness.protocol.versions import (
    ADVANCED_ORDER_REJECT,
    ERROR_TIME,
    PARAMETRIZED_DAYS_OF_EXECUTIONS,
    PENDING_PRICE_REVISION,
    SUBMITTER,
    TEXT_PROTOCOL_MAX,
    TEXT_PROTOCOL_MIN,
)

# Enough examples to cover every version threshold many times over while
# keeping the whole module to a few seconds of `make test`.
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

versions = st.integers(TEXT_PROTOCOL_MIN, TEXT_PROTOCOL_MAX)
# What a text field can carry on the wire: 7-bit ASCII without NUL.
text = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=40)
words = st.text(alphabet=string.ascii_letters + string.digits + " .:-_/", max_size=24)
ids = st.integers(-(2**31), 2**63)
finite = st.floats(allow_nan=False, allow_infinity=False)
quantities = st.one_of(st.integers(-10**9, 10**9).map(float), st.floats(-1e9, 1e9, allow_nan=False))
contracts = st.builds(
    Contract, con_id=st.integers(0, 2**31 - 1), symbol=words, sec_type=st.sampled_from(["STK", "OPT", "FUT", "CASH"]),
    currency=words, exchange=words, primary_exchange=words, local_symbol=words, trading_class=words,
    last_trade_date=words, strike=finite, right=st.sampled_from(["", "C", "P"]), multiplier=words)
executions = st.builds(
    Execution, exec_id=words, order_id=ids, contract=contracts, time=words, account=words,
    side=st.sampled_from(["BOT", "SLD"]), shares=quantities, price=finite, perm_id=ids, client_id=ids,
    exchange=words, order_ref=words, model_code=words, last_liquidity=st.integers(0, 4))


def wire(fields: list[Field]) -> list[str]:
    """Fields -> framed bytes -> the one payload a reader sees -> text fields."""
    (payload,) = FrameReader().feed(encode_message(fields))
    return split_fields(payload)


def same(decoded: str, value: Field) -> bool:
    """A decoded field equals what was encoded, in the encoder's own type."""
    if isinstance(value, bool):
        return decoded == ("1" if value else "0")
    if isinstance(value, int):
        return int(decoded) == value
    if isinstance(value, float):
        return float(decoded) == value or (math.isnan(value) and math.isnan(float(decoded)))
    return decoded == ("" if value is None else str(value))


def assert_named(msg: m.Message, expected: dict[str, Field]) -> None:
    for name, value in expected.items():
        assert name in msg.fields, f"{msg.name}: no field {name!r} in {msg.fields}"
        assert same(msg.fields[name], value), f"{msg.name}.{name}: {msg.fields[name]!r} != {value!r}"


def contract_fields(c: Contract, exchange_key: str = "exchange") -> dict[str, Field]:
    return {"con_id": c.con_id, "symbol": c.symbol, "sec_type": c.sec_type, "last_trade_date": c.last_trade_date,
            "strike": c.strike, "right": c.right, "multiplier": c.multiplier, "currency": c.currency,
            "local_symbol": c.local_symbol, "trading_class": c.trading_class,
            exchange_key: c.exchange if exchange_key == "exchange" else c.primary_exchange}


# ---------------------------------------------------------------- server -> client


@PROPS
@given(version=versions, order_id=ids)
def test_next_valid_id_round_trips(version: int, order_id: int) -> None:
    msg = decode_reply(version, wire(m.next_valid_id(order_id)))
    assert msg.msg_id == In.NEXT_VALID_ID
    assert_named(msg, {"version": 1, "order_id": order_id})


@PROPS
@given(version=versions, accounts=st.lists(st.text(string.ascii_uppercase + string.digits, min_size=1), max_size=6))
def test_managed_accounts_round_trips(version: int, accounts: list[str]) -> None:
    msg = decode_reply(version, wire(m.managed_accounts(accounts)))
    assert msg.fields["accounts"] == ",".join(accounts)
    assert [a for a in msg.fields["accounts"].split(",") if a] == accounts


@PROPS
@given(version=versions, req_id=ids, code=st.integers(0, 99999), message=text, reject=text,
       error_time=st.integers(0, 2**53))
def test_error_round_trips_at_every_layout(version: int, req_id: int, code: int, message: str, reject: str,
                                           error_time: int) -> None:
    msg = decode_reply(version, wire(m.error(version, req_id, code, message, reject_json=reject,
                                             error_time_ms=error_time)))
    expected: dict[str, Field] = {"req_id": req_id, "code": code, "message": message}
    if version >= ERROR_TIME:
        expected |= {"reject_json": reject, "error_time": error_time}
        assert "version" not in msg.fields
    elif version >= ADVANCED_ORDER_REJECT:
        expected |= {"version": 2, "reject_json": reject}
    else:
        expected |= {"version": 2}
        assert "reject_json" not in msg.fields
    assert_named(msg, expected)
    assert "extra" not in msg.fields  # exactly the layout, no stray field


@PROPS
@given(version=versions, seconds=st.integers(0, 2**40), millis=st.integers(0, 2**50))
def test_current_time_round_trips(version: int, seconds: int, millis: int) -> None:
    assert_named(decode_reply(version, wire(m.current_time(seconds))), {"version": 1, "time": seconds})
    assert_named(decode_reply(version, wire(m.current_time_in_millis(millis))), {"time_ms": millis})


@PROPS
@given(version=versions, account=words, contract=contracts, quantity=quantities, avg_cost=finite)
def test_position_round_trips(version: int, account: str, contract: Contract, quantity: float,
                              avg_cost: float) -> None:
    qty = m.quantity_text(quantity)
    msg = decode_reply(version, wire(m.position(account, contract, qty, avg_cost)))
    assert_named(msg, {"version": 3, "account": account, **contract_fields(contract), "position": qty,
                       "avg_cost": avg_cost})
    assert float(msg.fields["position"]) == quantity
    assert "extra" not in msg.fields


@PROPS
@given(version=versions, key=words, value=words, currency=words, account=words)
def test_account_value_round_trips(version: int, key: str, value: str, currency: str, account: str) -> None:
    msg = decode_reply(version, wire(m.account_value(key, value, currency, account)))
    assert_named(msg, {"version": 2, "key": key, "value": value, "currency": currency, "account": account})


@PROPS
@given(version=versions, contract=contracts, quantity=quantities, numbers=st.tuples(finite, finite, finite, finite, finite),
       account=words)
def test_portfolio_value_round_trips(version: int, contract: Contract, quantity: float,
                                     numbers: tuple[float, float, float, float, float], account: str) -> None:
    price, value, cost, unrealized, realized = numbers
    qty = m.quantity_text(quantity)
    msg = decode_reply(version, wire(m.portfolio_value(contract, qty, price, value, cost, unrealized, realized,
                                                       account)))
    assert_named(msg, {"version": 8, **contract_fields(contract, "primary_exchange"), "position": qty,
                       "market_price": price, "market_value": value, "avg_cost": cost,
                       "unrealized_pnl": unrealized, "realized_pnl": realized, "account": account})
    assert "extra" not in msg.fields


@PROPS
@given(version=versions, req_id=ids, account=words, model=words, key=words, value=words, currency=words, tag=words)
def test_account_multi_and_summary_round_trip(version: int, req_id: int, account: str, model: str, key: str,
                                              value: str, currency: str, tag: str) -> None:
    assert_named(decode_reply(version, wire(m.account_update_multi(req_id, account, model, key, value, currency))),
                 {"version": 1, "req_id": req_id, "account": account, "model_code": model, "key": key,
                  "value": value, "currency": currency})
    assert_named(decode_reply(version, wire(m.account_update_multi_end(req_id))), {"version": 1, "req_id": req_id})
    assert_named(decode_reply(version, wire(m.account_summary(req_id, account, tag, value, currency))),
                 {"version": 1, "req_id": req_id, "account": account, "tag": tag, "value": value,
                  "currency": currency})
    assert_named(decode_reply(version, wire(m.account_summary_end(req_id))), {"version": 1, "req_id": req_id})


@PROPS
@given(version=versions, hh_mm=words, account=words)
def test_short_replies_round_trip(version: int, hh_mm: str, account: str) -> None:
    assert_named(decode_reply(version, wire(m.account_time(hh_mm))), {"version": 1, "time": hh_mm})
    assert_named(decode_reply(version, wire(m.account_download_end(account))), {"version": 1, "account": account})
    for fields, msg_id in ((m.position_end(), In.POSITION_END), (m.open_order_end(), In.OPEN_ORDER_END)):
        msg = decode_reply(version, wire(fields))
        assert msg.msg_id == msg_id and msg.fields == {"version": "1"}
    end = decode_reply(version, wire(m.completed_orders_end()))
    assert end.msg_id == In.COMPLETED_ORDERS_END and end.raw == []


@PROPS
@given(version=versions, req_id=ids, execution=executions)
def test_exec_details_round_trips_with_version_tail(version: int, req_id: int, execution: Execution) -> None:
    e = execution
    msg = decode_reply(version, wire(m.exec_details(version, req_id, e)))
    shares = m.quantity_text(e.shares)
    assert_named(msg, {"req_id": req_id, "order_id": e.order_id, **contract_fields(e.contract), "exec_id": e.exec_id,
                       "time": e.time, "account": e.account, "exec_exchange": e.exchange, "side": e.side,
                       "shares": shares, "price": e.price})
    # The tail after the named layout: permId, clientId, liquidation, cumQty,
    # avgPrice, orderRef, evRule, evMultiplier, modelCode, lastLiquidity, then
    # pendingPriceRevision (>= 178) and submitter (>= 198).
    tail = msg.fields["extra"]
    assert tail[:10] == [field_text(v) for v in (e.perm_id, e.client_id, 0, shares, e.price, e.order_ref, "", "",
                                                 e.model_code, e.last_liquidity)]
    assert len(tail) == 10 + (version >= PENDING_PRICE_REVISION) + (version >= SUBMITTER)
    assert_named(decode_reply(version, wire(m.exec_details_end(req_id))), {"version": 1, "req_id": req_id})


# ---------------------------------------------------------------- client -> server

REQUESTS: list[tuple[Callable[..., list[Field]], Any, Callable[..., dict[str, Field]]]] = [
    (m.req_ids, st.tuples(st.integers(-5, 10**6)), lambda n: {"version": 1, "num_ids": n}),
    (m.req_managed_accts, st.tuples(), lambda: {"version": 1}),
    (m.req_current_time, st.tuples(), lambda: {"version": 1}),
    (m.req_positions, st.tuples(), lambda: {"version": 1}),
    (m.req_open_orders, st.tuples(), lambda: {"version": 1}),
    (m.req_account_updates, st.tuples(st.booleans(), words),
     lambda sub, acct: {"version": 2, "subscribe": sub, "account": acct}),
    (m.req_account_summary, st.tuples(ids, words, words),
     lambda req_id, group, tags: {"version": 1, "req_id": req_id, "group": group, "tags": tags}),
    (m.req_completed_orders, st.tuples(st.booleans()), lambda api_only: {"api_only": api_only}),
]


@PROPS
@given(data=st.data(), which=st.integers(0, len(REQUESTS) - 1))
def test_requests_round_trip(data: st.DataObject, which: int) -> None:
    encoder, args_strategy, expected = REQUESTS[which]
    args = data.draw(args_strategy)
    fields = encoder(*args)
    msg = decode_request(wire(fields))
    assert msg.msg_id == fields[0]
    assert_named(msg, expected(*args))
    assert "extra" not in msg.fields


@PROPS
@given(version=versions, req_id=ids)
def test_req_executions_round_trips(version: int, req_id: int) -> None:
    msg = decode_request(wire(m.req_executions(version, req_id)))
    assert msg.msg_id == Out.REQ_EXECUTIONS and msg.int("req_id") == req_id
    has_days = version >= PARAMETRIZED_DAYS_OF_EXECUTIONS
    assert ("last_n_days" in msg.fields) == has_days
    if has_days:
        assert msg.int("last_n_days") == m.UNSET_INTEGER and msg.int("n_specific_dates") == 0


# ---------------------------------------------------------------- handshake


@PROPS
@given(low=versions, span=st.integers(0, 100), options=st.sampled_from(["", "+PACEAPI", "+PACEAPI +X"]))
def test_hello_round_trips(low: int, span: int, options: str) -> None:
    data = encode_hello(low, low + span, options)
    assert data.startswith(API_PREFIX)
    (payload,) = FrameReader().feed(data[len(API_PREFIX):])
    hello = parse_hello(payload)
    assert (hello.min_version, hello.max_version, hello.options) == (low, low + span, options)


@PROPS
@given(version=versions, conn_time=st.text(string.ascii_letters + string.digits + " :/", min_size=1, max_size=40),
       client_id=st.integers(0, 2**31 - 1), caps=words)
def test_server_hello_and_start_api_round_trip(version: int, conn_time: str, client_id: int, caps: str) -> None:
    (payload,) = FrameReader().feed(encode_server_hello(version, conn_time))
    assert parse_server_hello(payload) == (version, conn_time)
    msg = decode_request(split_fields(FrameReader().feed(encode_start_api(client_id, version, caps))[0]))
    assert msg.msg_id == Out.START_API and msg.int("client_id") == client_id and msg.fields["capabilities"] == caps


# ---------------------------------------------------------------- framing: any split


def feed_in_chunks(stream: bytes, cuts: list[int], limit: int) -> tuple[list[bytes], str | None, int]:
    """Frames, the error (if any) and the bytes left pending, feeding
    `stream` cut at `cuts`, then ending the stream."""
    reader = FrameReader(limit=limit)
    frames: list[bytes] = []
    bounds = [0, *sorted(set(cuts)), len(stream)]
    try:
        for start, end in zip(bounds, bounds[1:]):
            frames += reader.feed(stream[start:end])
        pending = reader.pending
        reader.finish()
    except ProtocolError as exc:
        return frames, str(exc), -1
    return frames, None, pending


frame_lists = st.lists(st.lists(text, min_size=1, max_size=6), max_size=12)


@settings(max_examples=300, deadline=None)
@given(messages=frame_lists, data=st.data())
def test_any_split_of_a_valid_stream_gives_the_same_frames(messages: list[list[str]], data: st.DataObject) -> None:
    stream = b"".join(encode_message(fields) for fields in messages)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40))
    frames, error, pending = feed_in_chunks(stream, cuts, limit=1 << 20)
    assert error is None and pending == 0
    assert [split_fields(f) for f in frames] == [[field_text(v) for v in fields] for fields in messages]


@settings(max_examples=300, deadline=None)
@given(stream=st.binary(max_size=300), data=st.data(), limit=st.sampled_from([8, 64, 1 << 20]))
def test_any_split_of_any_bytes_gives_the_same_outcome(stream: bytes, data: st.DataObject, limit: int) -> None:
    """Arbitrary bytes (hostile length prefixes included): every split yields
    the same error text, or the same frames and the same pending count; and
    the frames seen before an error are a prefix of the unsplit run's."""
    whole_frames, whole_error, whole_pending = feed_in_chunks(stream, [], limit)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40))
    frames, error, pending = feed_in_chunks(stream, cuts, limit)
    assert error == whole_error
    if error is None:
        assert (frames, pending) == (whole_frames, whole_pending)
    else:
        reference, _, _ = feed_in_chunks(stream, list(range(len(stream) + 1)), limit)  # byte by byte
        assert frames == reference[:len(frames)]
