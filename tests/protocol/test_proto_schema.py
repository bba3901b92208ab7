"""The hand-written protobuf schemas match the installed official client.

Why: harness/protocol/proto_messages.py is standard-library code the mock
and the raw client depend on; the official client (ibapi-stable) ships the
authoritative descriptors as generated *_pb2.py modules (the wheel carries
no .proto files). A renumbered, retyped or added field upstream must fail
here, not in a handshake. The `protobuf` package is used in tests only.
"""

from __future__ import annotations

import importlib

import pytest

pytest.importorskip("google.protobuf")
from google.protobuf.descriptor import FieldDescriptor  # noqa: E402

from harness.protocol import era, proto_messages  # noqa: E402
from harness.protocol.protobuf import MessageType  # noqa: E402

_TYPE_NAMES = {
    FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_INT64: "int64", FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_DOUBLE: "double", FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
}


def _descriptor(name: str):  # noqa: ANN202 - a protobuf Descriptor
    module = importlib.import_module(f"ibapi.protobuf.{name}_pb2")
    return module.DESCRIPTOR.message_types_by_name[name]


def _official_shape(descriptor) -> list[tuple]:  # noqa: ANN001
    shape = []
    for f in descriptor.fields:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            type_name = f.message_type.name
        else:
            type_name = _TYPE_NAMES.get(f.type, f"unsupported:{f.type}")
        shape.append((f.number, f.name, type_name, f.is_repeated, f.has_presence))
    return sorted(shape)


def _our_shape(mtype: MessageType) -> list[tuple]:
    return sorted((f.number, f.name, f.type_name, f.repeated, f.optional) for f in mtype.fields)


@pytest.mark.parametrize("name", sorted(proto_messages.ALL))
def test_message_matches_official_descriptor(name: str) -> None:
    """Names, numbers, types, labels (repeated / optional presence) and
    nested message types, field by field, with nothing missing or extra."""
    assert _our_shape(proto_messages.ALL[name]) == _official_shape(_descriptor(name))


def test_schema_covers_the_startup_and_account_flow() -> None:
    assert len(proto_messages.ALL) >= 40
    for needed in ("Contract", "Execution", "ExecutionFilter", "StartApiRequest", "ErrorMessage", "Position",
                   "PortfolioValue", "AccountSummary", "ExecutionDetails"):
        assert needed in proto_messages.ALL


def test_reply_ids_have_official_protobuf_handlers() -> None:
    """Every server message the mock can send as protobuf has a protobuf
    handler in the official decoder under the same id."""
    from ibapi.decoder import Decoder

    handlers = Decoder.msgId2handleInfoProtoBuf
    for msg_id, mtype in proto_messages.REPLIES.items():
        assert msg_id in handlers, f"{mtype.name} ({msg_id}) has no protobuf handler"


def test_request_ids_match_the_official_out_ids() -> None:
    from ibapi.message import OUT

    expected = {
        "StartApiRequest": OUT.START_API, "IdsRequest": OUT.REQ_IDS, "ManagedAccountsRequest": OUT.REQ_MANAGED_ACCTS,
        "CurrentTimeRequest": OUT.REQ_CURRENT_TIME, "CurrentTimeInMillisRequest": OUT.REQ_CURRENT_TIME_IN_MILLIS,
        "PositionsRequest": OUT.REQ_POSITIONS, "CancelPositions": OUT.CANCEL_POSITIONS,
        "PositionsMultiRequest": OUT.REQ_POSITIONS_MULTI, "CancelPositionsMulti": OUT.CANCEL_POSITIONS_MULTI,
        "OpenOrdersRequest": OUT.REQ_OPEN_ORDERS, "AllOpenOrdersRequest": OUT.REQ_ALL_OPEN_ORDERS,
        "AutoOpenOrdersRequest": OUT.REQ_AUTO_OPEN_ORDERS, "CompletedOrdersRequest": OUT.REQ_COMPLETED_ORDERS,
        "AccountDataRequest": OUT.REQ_ACCT_DATA, "AccountUpdatesMultiRequest": OUT.REQ_ACCOUNT_UPDATES_MULTI,
        "CancelAccountUpdatesMulti": OUT.CANCEL_ACCOUNT_UPDATES_MULTI,
        "AccountSummaryRequest": OUT.REQ_ACCOUNT_SUMMARY, "CancelAccountSummary": OUT.CANCEL_ACCOUNT_SUMMARY,
        "ExecutionRequest": OUT.REQ_EXECUTIONS, "MarketDataTypeRequest": OUT.REQ_MARKET_DATA_TYPE,
    }
    assert {mtype.name: msg_id for msg_id, mtype in proto_messages.REQUESTS.items()} == expected


def test_request_gates_match_get_server_version_for_message() -> None:
    """era.REQUEST_GATES is ibapi's common.getServerVersionForMessage for
    every request the harness knows."""
    from ibapi.common import getServerVersionForMessage

    for out_id, gate in era.REQUEST_GATES.items():
        assert getServerVersionForMessage(out_id) == gate, out_id
    for out_id in proto_messages.REQUESTS:
        assert out_id in era.REQUEST_GATES, f"request {out_id} has a schema but no gate"


def test_protobuf_msg_id_offset_matches() -> None:
    from ibapi.common import PROTOBUF_MSG_ID
    from ibapi.server_versions import MAX_CLIENT_VER, MIN_SERVER_VER_PROTOBUF

    from harness.protocol import wire_id
    from harness.protocol.versions import PROTOBUF, PROTOCOL_MAX

    assert wire_id.PROTOBUF_MSG_ID == PROTOBUF_MSG_ID
    assert (PROTOBUF, PROTOCOL_MAX) == (MIN_SERVER_VER_PROTOBUF, MAX_CLIENT_VER)
