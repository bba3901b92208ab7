"""The one wire-id decoder (harness/protocol/wire_id.py) and the one shared
handshake (harness/protocol/handshake.py): their behaviour against the
official client's own encoders, and that no other module reads a frame's id
or opens a connection by hand again (issue 19: one place per concept)."""

from __future__ import annotations

import asyncio
import re

import pytest
from ibapi import comm
from ibapi.common import PROTOBUF_MSG_ID
from ibapi.message import OUT

from harness.mock.gateway import MockGateway
from harness.protocol.errors import ProtocolError
from harness.protocol.frame import DOWN, Frame
from harness.protocol.handshake import ClosedBeforeVersion, exchange_versions, start_api_frame
from harness.protocol.messages import In
from harness.protocol.wire_id import binary_id, is_binary_id, split_binary_id, unwire
from tests.support import ROOT

HARNESS = ROOT / "harness"
TIMEOUT = 10.0


@pytest.mark.parametrize("msg_id", [int(OUT.PLACE_ORDER), int(OUT.REQ_GLOBAL_CANCEL), int(OUT.START_API)])
def test_binary_and_protobuf_ids_read_as_the_official_client_writes_them(msg_id: int) -> None:
    binary = comm.make_msg(msg_id, True, "")[4:]  # the length prefix off: a payload
    proto = comm.make_msg_proto(msg_id + PROTOBUF_MSG_ID, b"\x08\x01")[4:]
    assert is_binary_id(binary) and is_binary_id(proto)
    assert unwire(split_binary_id(binary)[0]) == (msg_id, False)
    assert unwire(split_binary_id(proto)[0]) == (msg_id, True) and split_binary_id(proto)[1] == b"\x08\x01"
    assert binary_id(msg_id) == binary[:4] and binary_id(msg_id, protobuf=True) == proto[:4]
    assert not is_binary_id(comm.make_msg(msg_id, False, "")[4:])  # the text form starts with a digit


def test_a_short_binary_id_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="no 4-byte message id"):
        split_binary_id(b"\0\0\x03")


def test_a_frame_names_its_message_in_every_form() -> None:
    text = Frame(1, DOWN, "message", "managedAccounts", b"", [], int(In.MANAGED_ACCTS), 178)
    proto = Frame(1, DOWN, "message", "managedAccounts (protobuf)", b"", None, In.MANAGED_ACCTS + 200, 213)
    binary = Frame(1, DOWN, "message", "managedAccounts", b"", None, int(In.MANAGED_ACCTS), 205)
    assert text.message_id == proto.message_id == binary.message_id == In.MANAGED_ACCTS
    assert Frame(1, DOWN, "hello", "server hello v178", b"", None, None, 178).message_id is None


@pytest.mark.parametrize("version", [178, 226])
async def test_exchange_versions_then_start_api_reach_next_valid_id(version: int) -> None:
    async with MockGateway(port=0, profile="default" if version < 201 else "10.50") as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        try:
            reply = await asyncio.wait_for(exchange_versions(reader, writer, 100, version), TIMEOUT)
            assert reply.server_version == version and reply.connection_time
            writer.write(start_api_frame(7, reply.server_version))
            record = None
            for _ in range(100):  # bounded: the mock answers startApi within milliseconds
                record = gw.record_for_client(7)
                if record is not None and record.started_api:
                    break
                await asyncio.sleep(0.05)
            assert record is not None and record.started_api
        finally:
            writer.close()


async def test_exchange_versions_says_when_the_peer_closed_first() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with pytest.raises(ClosedBeforeVersion, match="before the version reply"):
            await asyncio.wait_for(exchange_versions(reader, writer, 100, 178), TIMEOUT)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_no_module_reads_a_wire_id_or_defines_a_frame_type_of_its_own() -> None:
    """PROTOBUF_MSG_ID is read by wire_id.py only; the proxy, guards and recording share protocol/frame.py."""
    offenders = []
    for path in HARNESS.rglob("*.py"):
        rel = path.relative_to(HARNESS).as_posix()
        text = path.read_text()
        if rel not in ("core/constants.py", "protocol/wire_id.py") and (
                re.search(r"\bimport\b[^\n]*\bPROTOBUF_MSG_ID\b", text)
                or re.search(r"^\s*PROTOBUF_MSG_ID\s*=\s*\d+\s*$", text, re.M)):
            offenders.append(f"{rel}: PROTOBUF_MSG_ID")
        if rel != "protocol/frame.py" and re.search(r"^class (Frame|FrameRecord|Entry|WireEntry)\b|^(UP|DOWN) = \"", text, re.M):
            offenders.append(f"{rel}: its own frame/transcript type or direction names")
    assert not offenders, offenders


def test_mock_proxy_and_recording_transcripts_are_one_record_type_with_their_own_formats() -> None:
    from harness.mock.transcript import ConnectionRecord
    from harness.protocol.frame import UP, FrameRecord
    from harness.proxy.wire import entry_dict, entry_for
    from harness.recording.codec import FrameLine

    record = ConnectionRecord(1, "127.0.0.1:5")
    record.add_hello(b"v100..178")
    (mock,) = record.entries
    assert isinstance(mock, FrameRecord) and (mock.direction, mock.name, mock.from_client) == ("recv", "hello", True)
    assert record.to_dict()["frames"][0].keys() == {"t", "dir", "name", "fields"}  # the mock's evidence format

    proxy = entry_for(Frame(3, UP, "hello", "hello v100..178", b"v100..178", ["v100..178"], None, None), 0.0)
    assert isinstance(proxy, FrameRecord) and proxy.from_client and proxy.size == 13
    assert list(entry_dict(proxy)) == ["t", "wall", "conn_id", "direction", "name", "size", "fields", "note"]

    line = FrameLine(1, 0.5, DOWN, "managedAccounts", 15, "text", ["15", "1", "DU1"], note="n")
    assert isinstance(line, FrameRecord) and not line.from_client
    assert list(line.to_dict()) == ["type", "conn", "t", "dir", "name", "id", "form", "fields", "note"]
    assert FrameLine.from_dict(line.to_dict()) == line
