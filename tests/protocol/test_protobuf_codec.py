"""The standard-library protobuf codec and the framing of server versions 201..226.

Three kinds of evidence: every schema's encoding is byte-identical to the
official `protobuf` serializer and decodes what it writes (cross-check,
tests only); the frames the official client sent at 213 and 226
(captured from ibapi-stable 10.50.2's own encoder) round-trip byte for byte and
are exactly what the raw client sends; and the text era is untouched.
"""

from __future__ import annotations

import importlib
import struct

import pytest

from harness.protocol import messages as m
from harness.protocol import proto_messages as pm
from harness.protocol import protobuf as pb
from harness.protocol.era import REPLY_MODELS, Form, request_form
from harness.protocol.errors import ProtocolError
from harness.protocol.framing import encode_message
from harness.protocol.handshake import encode_hello
from harness.protocol.messages import In, Out
from harness.protocol.wire import decode_client_frame, decode_server_frame, encode_in_form, encode_request

ACCT = "DU123456"


def frame(msg_id: int, body: bytes = b"") -> bytes:
    payload = struct.pack(">I", msg_id) + body
    return struct.pack(">I", len(payload)) + payload


def s(text: str) -> bytes:
    raw = text.encode()
    return bytes([len(raw)]) + raw


MINUS_ONE = b"\xff" * 9 + b"\x01"
ERROR_MS = 1700000000123
CONTRACT = (b"\x08\xfe\x9a\x10" + b"\x12" + s("AAPL") + b"\x1a" + s("STK") + b"\x42" + s("SMART")
            + b"\x4a" + s("NASDAQ") + b"\x52" + s("USD") + b"\x5a" + s("AAPL") + b"\x62" + s("NMS"))

# The official client (ibapi-stable 10.50.2) -> Gateway, identical at 213 and
# 226: (frame, the same request as the raw client builds it in text form).
CLIENT_FRAMES: list[tuple[str, bytes, list]] = [
    ("startApi", frame(271, b"\x08\x07"), [Out.START_API, 2, 7, ""]),
    ("reqPositions", frame(261), m.req_positions()),
    ("reqAccountUpdates", frame(206, b"\x08\x01\x12" + s(ACCT)), m.req_account_updates(True, ACCT)),
    ("reqCurrentTime", frame(249), m.req_current_time()),
    ("reqCurrentTimeInMillis", frame(305), [Out.REQ_CURRENT_TIME_IN_MILLIS]),
    ("reqAccountSummary", frame(262, b"\x08\xa9\x46\x12" + s("All") + b"\x1a" + s("NetLiquidation")),
     m.req_account_summary(9001, "All", "NetLiquidation")),
    ("reqOpenOrders", frame(205), m.req_open_orders()),
    ("reqExecutions", frame(207, b"\x08\x03\x12\x02\x08\x00"), None),  # built per version below
    ("reqCompletedOrders", frame(299), m.req_completed_orders(False)),
    ("reqIds", frame(208, b"\x08" + MINUS_ONE), m.req_ids(-1)),
    ("reqManagedAccts", frame(217), m.req_managed_accts()),
]

# Gateway -> client frames of the capture (encoded by the researcher's
# standard-library server; the official client fired every callback).
SERVER_FRAMES: list[tuple[str, bytes]] = [
    ("managedAccounts", frame(215, b"\x0a" + s(ACCT))),
    ("nextValidId", frame(209, b"\x08\x01")),
    ("error", frame(204, b"\x08" + MINUS_ONE + b"\x10" + pb.encode_varint(ERROR_MS) + b"\x18\xb8\x10\x22"
                    + s("Market data farm connection is OK:usfarm") + b"\x2a\x00")),
    ("position", frame(261, b"\x0a" + s(ACCT) + b"\x12" + bytes([len(CONTRACT)]) + CONTRACT + b"\x1a" + s("100")
                       + b"\x21" + struct.pack("<d", 150.25))),
    ("positionEnd", frame(262)),
    ("currentTime", frame(249, b"\x08\x80\xe2\xcf\xaa\x06")),
    ("accountSummary", frame(263, b"\x08\xa9\x46\x12" + s(ACCT) + b"\x1a" + s("NetLiquidation") + b"\x22"
                             + s("1000000.00") + b"\x2a" + s("USD"))),
    ("accountSummaryEnd", frame(264, b"\x08\xa9\x46")),
    ("openOrderEnd", frame(253)),
    ("execDetailsEnd", frame(255, b"\x08\x03")),
    ("completedOrdersEnd", frame(302)),
]


# ---------------------------------------------------------------- primitives


@pytest.mark.parametrize("value, encoded", [
    (0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
    (-1, MINUS_ONE), (2**31 - 1, b"\xff\xff\xff\xff\x07"), (-(2**31), b"\x80\x80\x80\x80\xf8\xff\xff\xff\xff\x01"),
    (2**63 - 1, b"\xff" * 8 + b"\x7f"),
])
def test_varint_encoding(value: int, encoded: bytes) -> None:
    assert pb.encode_varint(value) == encoded


@pytest.mark.parametrize("type_name, value", [
    ("int32", -1), ("int32", -(2**31)), ("int32", 2**31 - 1), ("int64", -(2**63)), ("int64", 2**63 - 1),
    ("int64", 1700000000123), ("bool", True), ("bool", False), ("double", -0.5), ("double", 1e300),
    ("string", ""), ("string", "é ünïcode"),
])
def test_scalar_round_trip(type_name: str, value: object) -> None:
    mtype = pb.MessageType("T", (pb.ProtoField(1, "v", type_name),))
    assert pb.decode(mtype, pb.encode(mtype, {"v": value})) == {"v": value}


def test_optional_presence_writes_zero_and_empty_and_omits_missing() -> None:
    mtype = pm.ErrorMessage
    assert pb.encode(mtype, {}) == b""
    assert pb.encode(mtype, {"id": 0, "errorMsg": ""}) == b"\x08\x00\x22\x00"
    assert pb.decode(mtype, b"\x08\x00\x22\x00") == {"id": 0, "errorMsg": ""}


def test_packed_and_unpacked_repeated_both_decode() -> None:
    packed = b"\x4a\x03\x01\x02\x03"
    unpacked = b"\x48\x01\x48\x02\x48\x03"
    assert pb.decode(pm.ExecutionFilter, packed) == {"specificDates": [1, 2, 3]}
    assert pb.decode(pm.ExecutionFilter, unpacked) == {"specificDates": [1, 2, 3]}
    assert pb.encode(pm.ExecutionFilter, {"specificDates": [1, 2, 3]}) == packed


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = (b"\xf8\x01\x96\x01"  # field 31 varint
               + b"\xf9\x01" + b"\x00" * 8  # field 31 fixed64
               + b"\xfa\x01\x02hi"  # field 31 length-delimited
               + b"\xfd\x01\x00\x00\x00\x00")  # field 31 fixed32
    assert pb.decode(pm.NextValidId, unknown + b"\x08\x05") == {"orderId": 5}


@pytest.mark.parametrize("data", [b"\x08", b"\x08\xff", b"\x0a\x05abc", b"\x21\x00\x00", b"\x0b", b"\x00\x01"])
def test_truncated_or_malformed_raises_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        pb.decode(pm.PortfolioValue if data.startswith(b"\x21") else pm.ManagedAccounts
                  if data.startswith(b"\x0a") else pm.NextValidId, data)


def test_encode_rejects_a_field_not_in_the_schema() -> None:
    with pytest.raises(ProtocolError, match="no field"):
        pb.encode(pm.NextValidId, {"orderID": 1})


# ---------------------------------------------------------------- cross-check with the official serializer


def _sample(mtype: pb.MessageType, depth: int = 0) -> dict:
    """A deterministic value for every field: negative ints, doubles,
    unicode, nested messages and repeated fields included."""
    values: dict = {}
    for f in mtype.fields:
        if isinstance(f.type, pb.MessageType):
            one = _sample(f.type, depth + 1)
            values[f.name] = [one, _sample(f.type, depth + 1)] if f.repeated else one
            continue
        base = {"int32": -f.number, "int64": -(10**12) - f.number, "bool": f.number % 2 == 0,
                "double": f.number + 0.25, "string": f"{f.name}-é", "bytes": b"\x00\x01"}[f.type_name]
        values[f.name] = [base, base] if f.repeated else base
    return values


def _official(name: str):  # noqa: ANN202
    return getattr(importlib.import_module(f"ibapi.protobuf.{name}_pb2"), name)


def _fill(msg, values: dict) -> None:  # noqa: ANN001
    for key, value in values.items():
        if isinstance(value, dict):
            _fill(getattr(msg, key), value)
        elif isinstance(value, list):
            target = getattr(msg, key)
            for item in value:
                if isinstance(item, dict):
                    _fill(target.add(), item)
                else:
                    target.append(item)
        else:
            setattr(msg, key, value)


@pytest.mark.parametrize("name", sorted(pm.ALL))
def test_bytes_identical_to_the_official_serializer(name: str) -> None:
    pytest.importorskip("google.protobuf")
    mtype = pm.ALL[name]
    values = _sample(mtype)
    official = _official(name)()
    _fill(official, values)
    ours = pb.encode(mtype, values)
    assert ours == official.SerializeToString()
    parsed = _official(name)()
    parsed.ParseFromString(ours)
    assert parsed == official
    assert pb.decode(mtype, official.SerializeToString()) == values


# ---------------------------------------------------------------- captured frames, 213 and 226


def test_hello_of_the_modern_official_client() -> None:
    assert encode_hello(100, 226) == b"API\0" + b"\x00\x00\x00\x09v100..226"


@pytest.mark.parametrize("version", [213, 226])
@pytest.mark.parametrize("name, wire, text", CLIENT_FRAMES, ids=[c[0] for c in CLIENT_FRAMES])
def test_official_client_frames_decode_and_reencode_byte_for_byte(version: int, name: str, wire: bytes,
                                                                  text: list | None) -> None:
    msg, form, shown = decode_client_frame(version, wire[4:])
    assert (form, msg.name) == (Form.PROTOBUF, name)
    wire_id = struct.unpack(">I", wire[4:8])[0]
    values = pb.decode(pm.REQUESTS[wire_id - 200], wire[8:])
    assert frame(wire_id, pb.encode(pm.REQUESTS[wire_id - 200], values)) == wire
    # ... and the raw client sends exactly these bytes for the same request
    fields = m.req_executions(version, 3) if text is None else text
    assert encode_request(version, fields)[0] == wire


@pytest.mark.parametrize("name, wire", SERVER_FRAMES, ids=[c[0] for c in SERVER_FRAMES])
def test_captured_server_frames_round_trip_byte_for_byte(name: str, wire: bytes) -> None:
    msg, form, _ = decode_server_frame(226, wire[4:])
    assert (form, msg.name) == (Form.PROTOBUF, name)
    wire_id = struct.unpack(">I", wire[4:8])[0]
    mtype = pm.REPLIES[wire_id - 200]
    assert frame(wire_id, pb.encode(mtype, pb.decode(mtype, wire[8:]))) == wire


def test_captured_frames_decode_to_the_text_names() -> None:
    """Both eras read alike: a protobuf reply decodes to the same named
    fields its text form gives, so transcripts and the raw client agree."""
    by_name = dict(SERVER_FRAMES)
    assert decode_server_frame(213, by_name["managedAccounts"][4:])[0].fields == {"accounts": ACCT}
    err = decode_server_frame(213, by_name["error"][4:])[0]
    assert (err.int("req_id"), err.int("code"), err.int("error_time")) == (-1, 2104, ERROR_MS)
    pos = decode_server_frame(213, by_name["position"][4:])[0]
    assert (pos.fields["account"], pos.int("con_id"), pos.fields["symbol"], pos.fields["position"],
            float(pos.fields["avg_cost"])) == (ACCT, 265598, "AAPL", "100", 150.25)


@pytest.mark.parametrize("name, fields", [
    ("managedAccounts", m.managed_accounts([ACCT])),
    ("nextValidId", m.next_valid_id(1)),
    ("positionEnd", m.position_end()),
    ("currentTime", m.current_time(1700000000)),
    ("accountSummary", m.account_summary(9001, ACCT, "NetLiquidation", "1000000.00", "USD")),
    ("accountSummaryEnd", m.account_summary_end(9001)),
    ("openOrderEnd", m.open_order_end()),
    ("execDetailsEnd", m.exec_details_end(3)),
    ("completedOrdersEnd", m.completed_orders_end()),
])
def test_mock_replies_equal_the_captured_frames(name: str, fields: list) -> None:
    assert encode_in_form(Form.PROTOBUF, 226, fields, from_client=False)[0] == dict(SERVER_FRAMES)[name]


# ---------------------------------------------------------------- framing of the three forms


@pytest.mark.parametrize("version", [100, 157, 178, 194, 200])
def test_text_era_is_byte_identical(version: int) -> None:
    for fields in (m.next_valid_id(5), m.error(version, -1, 2104, "ok", error_time_ms=1), m.req_positions(),
                   m.position(ACCT, m.Contract(1, "X"), "1", 2.5)):
        assert encode_in_form(Form.TEXT, version, fields, from_client=False)[0] == encode_message(fields)
    assert encode_request(version, m.req_positions()) == (encode_message(m.req_positions()), ["61", "1"],
                                                          Form.TEXT)


def test_binary_id_text_matches_the_official_client_at_201_and_207() -> None:
    # wire-protocol.md "What happens at version >= 201": startApi at 201
    assert encode_request(201, [71, 2, 7, ""])[0] == b"\x00\x00\x00\x09\x00\x00\x00G2\x007\x00\x00"
    assert encode_request(201, m.req_current_time())[0] == b"\x00\x00\x00\x06\x00\x00\x0011\x00"
    assert encode_request(207, [Out.REQ_CURRENT_TIME_IN_MILLIS])[0] == b"\x00\x00\x00\x04\x00\x00\x00\x69"
    assert encode_request(207, m.req_positions())[0] == frame(261)
    msg, form, shown = decode_client_frame(207, b"\x00\x00\x00\x69")
    assert (msg.name, form, shown) == ("reqCurrentTimeInMillis", Form.TEXT_BINARY_ID, ["105"])


def test_a_text_era_frame_after_201_is_a_protocol_error() -> None:
    """Old ASCII ids read as 4 binary bytes are a huge id: named, not guessed."""
    with pytest.raises(ProtocolError, match="message id"):
        decode_client_frame(213, b"15\x001\x00DU1\x00")


@pytest.mark.parametrize("version, out_id, expected", [
    (200, Out.REQ_EXECUTIONS, Form.TEXT), (201, Out.REQ_EXECUTIONS, Form.PROTOBUF),
    (201, Out.START_API, Form.TEXT_BINARY_ID), (206, Out.REQ_POSITIONS, Form.TEXT_BINARY_ID),
    (207, Out.REQ_POSITIONS, Form.PROTOBUF), (212, Out.REQ_IDS, Form.TEXT_BINARY_ID),
    (213, Out.REQ_IDS, Form.PROTOBUF), (203, Out.PLACE_ORDER, Form.TEXT_BINARY_ID),  # no order schema here
])
def test_request_form_follows_the_official_gates(version: int, out_id: int, expected: Form) -> None:
    assert request_form(version, out_id) is expected


@pytest.mark.parametrize("model, version, msg_id, origin, expected", [
    ("request-family", 200, In.ERR_MSG, None, Form.TEXT),
    ("request-family", 201, In.ERR_MSG, None, Form.PROTOBUF),
    ("request-family", 205, In.NEXT_VALID_ID, Out.START_API, Form.TEXT_BINARY_ID),  # S8: TWS at 205
    ("request-family", 205, In.MANAGED_ACCTS, Out.START_API, Form.TEXT_BINARY_ID),
    ("request-family", 207, In.MANAGED_ACCTS, Out.REQ_MANAGED_ACCTS, Form.PROTOBUF),
    ("request-family", 207, In.POSITION_DATA, Out.REQ_POSITIONS, Form.PROTOBUF),
    ("request-family", 203, In.EXECUTION_DATA, Out.REQ_EXECUTIONS, Form.PROTOBUF),
    ("request-family", 203, In.OPEN_ORDER_END, Out.REQ_OPEN_ORDERS, Form.TEXT_BINARY_ID),
    ("request-family", 213, In.NEXT_VALID_ID, Out.START_API, Form.PROTOBUF),
    ("rest3-switch", 207, In.ERR_MSG, None, Form.TEXT_BINARY_ID),
    ("rest3-switch", 212, In.POSITION_DATA, Out.REQ_POSITIONS, Form.TEXT_BINARY_ID),
    ("rest3-switch", 213, In.POSITION_DATA, Out.REQ_POSITIONS, Form.PROTOBUF),
    ("binary-id-text", 226, In.NEXT_VALID_ID, Out.START_API, Form.TEXT_BINARY_ID),
    ("request-family", 226, In.COMMISSION_REPORT, Out.REQ_EXECUTIONS, Form.TEXT_BINARY_ID),  # no schema here
])
def test_reply_models(model: str, version: int, msg_id: int, origin: int | None, expected: Form) -> None:
    assert REPLY_MODELS[model].reply_form(version, msg_id, origin) is expected
