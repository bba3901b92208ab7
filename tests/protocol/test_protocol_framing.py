"""Unit tests of the framing and handshake codec (harness/protocol/framing.py, handshake.py).

The incremental reader is shared by the mock, the raw client and the probe,
so the properties that matter are split-independence (TCP may cut a stream
anywhere) and early, explicit rejection of bad input with a cause.
"""

from __future__ import annotations

import itertools
import random
import struct

import pytest

from harness.protocol import (
    API_PREFIX,
    MAX_FRAME,
    FrameReader,
    Hello,
    ProtocolError,
    check_prefix,
    encode_fields,
    encode_frame,
    encode_hello,
    encode_message,
    encode_server_hello,
    encode_start_api,
    format_connection_time,
    message_id,
    parse_hello,
    parse_server_hello,
    split_fields,
)
from harness.protocol.framing import field_text

# A stream of differently sized frames, including a 1-byte payload and one
# whose body is longer than the 4-byte header.
MESSAGES: list[list[object]] = [
    [9, 1, 1],
    [15, 1, "DU1234567,DU7654321"],
    [4, 2, -1, 2104, "Market data farm connection is OK:usfarm", ""],
    [102],
    [49, 1, 1764000000],
]
PAYLOADS = [encode_fields(fields) for fields in MESSAGES]  # type: ignore[arg-type]
STREAM = b"".join(encode_frame(p) for p in PAYLOADS)
BOUNDARIES = set(itertools.accumulate(len(encode_frame(p)) for p in PAYLOADS)) | {0}


def _feed_chunks(chunks: list[bytes], limit: int = MAX_FRAME) -> list[bytes]:
    reader = FrameReader(limit)
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(reader.feed(chunk))
    reader.finish()
    assert reader.pending == 0
    return out


def _split(data: bytes, points: tuple[int, ...]) -> list[bytes]:
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


# ---------------------------------------------------------------- field encoding


def test_field_text_matches_make_field() -> None:
    assert field_text(None) == ""
    assert field_text(True) == "1"
    assert field_text(False) == "0"
    assert field_text(7) == "7"
    assert field_text(-1) == "-1"
    assert field_text(1.5) == "1.5"
    assert field_text(0.0) == "0.0"
    assert field_text("abc") == "abc"


def test_encode_fields_terminates_every_field_with_nul() -> None:
    assert encode_fields([9, 1, 5]) == b"9\x001\x005\x00"
    assert encode_fields([4, ""]) == b"4\x00\x00"
    assert encode_fields([]) == b""


def test_encode_fields_rejects_embedded_nul() -> None:
    with pytest.raises(ProtocolError) as info:
        encode_fields(["a\0b"])
    assert "NUL" in info.value.cause


def test_encode_fields_escapes_non_ascii_text() -> None:
    # ibapi decodes text fields with unicode-escape at server version >= 153.
    assert encode_fields(["Zürich"]) == b"Z\\xfcrich\x00"


def test_encode_frame_prefixes_big_endian_length() -> None:
    assert encode_frame(b"9\x001\x005\x00") == b"\x00\x00\x00\x069\x001\x005\x00"
    assert encode_message([49, 1]) == b"\x00\x00\x00\x0549\x001\x00"


def test_encode_frame_rejects_empty_and_oversize() -> None:
    with pytest.raises(ProtocolError) as info:
        encode_frame(b"")
    assert info.value.cause == "empty frame"
    with pytest.raises(ProtocolError) as info:
        encode_frame(b"x" * 11, limit=10)
    assert "exceeds the limit" in info.value.cause
    assert encode_frame(b"x" * 10, limit=10)[:4] == struct.pack(">I", 10)


# ---------------------------------------------------------------- FrameReader: splitting


def test_whole_stream_in_one_chunk() -> None:
    assert _feed_chunks([STREAM]) == PAYLOADS


def test_byte_by_byte() -> None:
    reader = FrameReader()
    out: list[bytes] = []
    for i in range(len(STREAM)):
        got = reader.feed(STREAM[i:i + 1])
        # a frame completes exactly on its last byte, never earlier or later
        assert bool(got) == ((i + 1) in BOUNDARIES)
        out.extend(got)
    reader.finish()
    assert out == PAYLOADS


@pytest.mark.parametrize("point", range(1, len(STREAM)))
def test_every_single_split_point(point: int) -> None:
    assert _feed_chunks(_split(STREAM, (point,))) == PAYLOADS


def test_every_pair_of_split_points() -> None:
    # ~10k partitions of the stream into three chunks, all must agree.
    for a, b in itertools.combinations(range(1, len(STREAM)), 2):
        assert _feed_chunks(_split(STREAM, (a, b))) == PAYLOADS, (a, b)


def test_random_partitions_with_empty_chunks() -> None:
    rng = random.Random(20261125)  # fixed seed: reproducible
    for _ in range(500):
        k = rng.randint(1, 12)
        points = tuple(sorted(rng.randint(0, len(STREAM)) for _ in range(k)))  # repeats -> empty chunks
        assert _feed_chunks(_split(STREAM, points)) == PAYLOADS, points


def test_pending_counts_partial_bytes() -> None:
    reader = FrameReader()
    first = len(encode_frame(PAYLOADS[0]))
    assert reader.feed(STREAM[:first + 3]) == [PAYLOADS[0]]
    assert reader.pending == 3
    assert reader.feed(STREAM[first + 3:]) == PAYLOADS[1:]
    assert reader.pending == 0


def test_empty_feed_is_harmless() -> None:
    reader = FrameReader()
    assert reader.feed(b"") == []
    reader.finish()


# ---------------------------------------------------------------- FrameReader: rejection


def test_oversize_prefix_rejected_when_header_completes() -> None:
    reader = FrameReader(limit=100)
    header = struct.pack(">I", 101)
    # three header bytes say nothing yet
    assert reader.feed(header[:3]) == []
    with pytest.raises(ProtocolError) as info:
        reader.feed(header[3:])  # the 4th byte: rejected with no body sent at all
    assert "101 exceeds the limit of 100" in info.value.cause
    assert info.value.hint


def test_oversize_prefix_rejected_in_one_chunk_with_body_prefix() -> None:
    reader = FrameReader(limit=100)
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        reader.feed(struct.pack(">I", 0xFFFFFFFF) + b"abc")


def test_oversize_after_good_frames_in_same_chunk() -> None:
    reader = FrameReader(limit=100)
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        reader.feed(STREAM + struct.pack(">I", 1000))


def test_frame_at_exactly_the_limit_is_accepted() -> None:
    payload = b"9" * 99 + b"\0"
    assert FrameReader(limit=100).feed(encode_frame(payload)) == [payload]


def test_default_limit_is_the_official_clients() -> None:
    reader = FrameReader()
    assert reader.limit == MAX_FRAME == 0xFFFFFF
    assert reader.feed(struct.pack(">I", MAX_FRAME)) == []  # allowed: waits for the body
    with pytest.raises(ProtocolError):
        FrameReader().feed(struct.pack(">I", MAX_FRAME + 1))


def test_zero_length_frame_rejected() -> None:
    reader = FrameReader()
    with pytest.raises(ProtocolError) as info:
        reader.feed(b"\x00\x00\x00\x00")
    assert info.value.cause == "zero-length frame"


def test_zero_length_frame_rejected_after_a_good_one() -> None:
    reader = FrameReader()
    with pytest.raises(ProtocolError, match="zero-length"):
        reader.feed(encode_message([9, 1, 1]) + b"\x00\x00\x00\x00")


@pytest.mark.parametrize("cut", [c for c in range(1, len(STREAM)) if c not in BOUNDARIES])
def test_truncated_stream_finish_raises(cut: int) -> None:
    reader = FrameReader()
    reader.feed(STREAM[:cut])
    with pytest.raises(ProtocolError) as info:
        reader.finish()
    assert "stream ended inside a frame" in info.value.cause
    assert f"({reader.pending} bytes pending)" in info.value.cause


@pytest.mark.parametrize("cut", sorted(BOUNDARIES))
def test_stream_ending_on_a_boundary_finishes_cleanly(cut: int) -> None:
    reader = FrameReader()
    reader.feed(STREAM[:cut])
    reader.finish()


# ---------------------------------------------------------------- split_fields / message_id


def test_split_fields_good() -> None:
    assert split_fields(b"9\x001\x005\x00") == ["9", "1", "5"]
    assert split_fields(b"4\x00\x00\x00") == ["4", "", ""]
    assert split_fields(b"102\x00") == ["102"]


def test_split_fields_round_trips_encode_fields() -> None:
    for fields, payload in zip(MESSAGES, PAYLOADS):
        assert split_fields(payload) == [field_text(f) for f in fields]  # type: ignore[arg-type]


def test_split_fields_missing_trailing_nul() -> None:
    with pytest.raises(ProtocolError) as info:
        split_fields(b"9\x001\x005")
    assert info.value.cause == "frame does not end with NUL"
    assert info.value.hint


def test_split_fields_empty() -> None:
    with pytest.raises(ProtocolError) as info:
        split_fields(b"")
    assert info.value.cause == "empty frame"


@pytest.mark.parametrize("payload, offset", [
    (b"4\x00\xe9\x00", 2),
    (b"\xff\x00", 0),
    (b"15\x001\x00DU\x80\x00", 7),
])
def test_split_fields_non_ascii(payload: bytes, offset: int) -> None:
    with pytest.raises(ProtocolError) as info:
        split_fields(payload)
    assert f"non-ASCII byte 0x{payload[offset]:02x} at offset {offset}" == info.value.cause
    assert "ASCII" in info.value.hint


def test_message_id_good() -> None:
    assert message_id(["9", "1"]) == 9
    assert message_id(["102"]) == 102


@pytest.mark.parametrize("first", ["", "abc", "-1", "4.0", " 9", "9x", "0x10", "\u00b2", "\u0663"])
def test_message_id_non_numeric(first: str) -> None:
    with pytest.raises(ProtocolError) as info:
        message_id([first, "1"])
    assert "non-numeric message id" in info.value.cause
    assert repr(first[:20]) in info.value.cause


def test_message_id_of_split_garbage_frame() -> None:
    with pytest.raises(ProtocolError, match="non-numeric message id 'GET /'"):
        message_id(split_fields(b"GET /\x00"))


def test_message_id_no_fields() -> None:
    with pytest.raises(ProtocolError) as info:
        message_id([])
    assert info.value.cause == "frame has no fields"


def test_protocol_error_carries_cause_and_hint() -> None:
    exc = ProtocolError("the cause", "the hint")
    assert exc.cause == "the cause" and exc.hint == "the hint"
    assert str(exc) == "the cause (the hint)"
    assert str(ProtocolError("only")) == "only"


# ---------------------------------------------------------------- handshake


def test_encode_hello_matches_real_clients() -> None:
    # ib_async 2.x, byte for byte (wire-protocol.md section 1)
    assert encode_hello(157, 178) == b"API\x00\x00\x00\x00\x09v157..178"
    assert encode_hello(157, 178, "+PACEAPI") == b"API\x00\x00\x00\x00\x12v157..178 +PACEAPI"
    assert encode_hello(100, 226)[4:] == encode_frame(b"v100..226")
    assert encode_hello(176, 176) == API_PREFIX + encode_frame(b"v176")


@pytest.mark.parametrize("data", [b"", b"A", b"AP", b"API", b"API\0", b"API\0\x00\x00\x00\x09v157"])
def test_check_prefix_accepts_prefixes_of_api_nul(data: bytes) -> None:
    check_prefix(data)


@pytest.mark.parametrize("data", [
    b"G", b"GET ", b"XAPI\0", b"api\0", b"API ", b"API\x01", b"\x00\x00\x00\x09", b"\x16\x03\x01",
    b"AP\0",
])
def test_check_prefix_rejects_bytes_before_api(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        check_prefix(data)
    assert "did not start with API\\0" in info.value.cause
    assert repr(data[:8]) in info.value.cause
    assert info.value.hint


@pytest.mark.parametrize("text, expected", [
    (b"v157..178", Hello(157, 178, "")),
    (b"v100..157", Hello(100, 157, "")),
    (b"v100..226", Hello(100, 226, "")),
    (b"v176", Hello(176, 176, "")),
    (b"v157..178 +PACEAPI", Hello(157, 178, "+PACEAPI")),
    (b"v100..200 +PACEAPI +FOO", Hello(100, 200, "+PACEAPI +FOO")),
    (b"v157..178\x00", Hello(157, 178, "")),  # a client that NUL-terminates anyway
    (b"v178..178", Hello(178, 178, "")),
])
def test_parse_hello_good(text: bytes, expected: Hello) -> None:
    assert parse_hello(text) == expected


def test_parse_hello_round_trips_encode_hello() -> None:
    for low, high, options in [(100, 157, ""), (157, 178, "+PACEAPI"), (100, 226, ""), (190, 190, "")]:
        framed = encode_hello(low, high, options)[len(API_PREFIX):]
        (payload,) = FrameReader().feed(framed)
        assert parse_hello(payload) == Hello(low, high, options)


@pytest.mark.parametrize("text", [
    b"", b"157..178", b"V157..178", b"v", b"vabc", b"v157..", b"v157-178", b"v157..178+PACEAPI",
    b"v 157..178", b"v157..178..200", b"GET / HTTP/1.1", b"v-1..5", b"v157.178",
    b"v157..178\n", b"v157..178 +PACEAPI\n",  # a trailing newline is not a range (regex $ would allow it)
])
def test_parse_hello_bad_range_text(text: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_hello(text)
    assert "bad version range" in info.value.cause
    assert "v157..178" in info.value.hint


def test_parse_hello_inverted_range() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_hello(b"v178..157")
    assert info.value.cause == "version range 178..157 is inverted"


def test_parse_hello_non_ascii() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_hello(b"v157..178 \xff")
    assert info.value.cause == "version range is not ASCII"


def test_parse_hello_bad_text_is_truncated_in_cause() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_hello(b"x" * 500)
    assert len(info.value.cause) < 80


def test_server_hello_round_trip() -> None:
    frame = encode_server_hello(178, "20250425 15:23:54 EST")
    assert frame == b"\x00\x00\x00\x1a178\x0020250425 15:23:54 EST\x00"
    (payload,) = FrameReader().feed(frame)
    assert parse_server_hello(payload) == (178, "20250425 15:23:54 EST")


def test_parse_server_hello_real_capture_with_long_zone() -> None:
    assert parse_server_hello(b"176\x0020250625 09:26:58 Central European Standard Time\x00") == (
        176, "20250625 09:26:58 Central European Standard Time")


@pytest.mark.parametrize("payload, cause", [
    (b"178\x00", "server hello has 1 fields, expected 2"),
    (b"9\x001\x001\x00", "server hello has 3 fields, expected 2"),
    (b"abc\x00time\x00", "server version 'abc' is not a number"),
    (b"\x00time\x00", "server version '' is not a number"),
])
def test_parse_server_hello_bad(payload: bytes, cause: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_hello(payload)
    assert info.value.cause == cause


def test_parse_server_hello_missing_nul() -> None:
    with pytest.raises(ProtocolError, match="does not end with NUL"):
        parse_server_hello(b"178\x0020250425 15:23:54 EST")


def test_format_connection_time() -> None:
    from datetime import datetime, timezone

    when = datetime(2025, 4, 25, 15, 23, 54, tzinfo=timezone.utc)
    assert format_connection_time(when, "EST") == "20250425 15:23:54 EST"
    assert format_connection_time(when) == "20250425 15:23:54 UTC"


def test_start_api_matches_real_clients() -> None:
    # ib_async sent 71,2,7, (empty optCapab) on a real run
    assert encode_start_api(7, 178) == encode_message([71, 2, 7, ""])
    assert split_fields(encode_start_api(7, 178)[4:]) == ["71", "2", "7", ""]
    assert encode_start_api(7, 178, "+cap") == encode_message([71, 2, 7, "+cap"])
    # below OPTIONAL_CAPABILITIES (72) there is no capabilities field
    assert split_fields(encode_start_api(7, 71)[4:]) == ["71", "2", "7"]
