"""Property tests (hypothesis) of the protobuf-era codec (server versions 201..226).

For every message type the harness declares (harness/protocol/proto_messages.py):
any value the schema allows encodes and decodes back to itself, the decoded
value re-encodes to the same bytes (what the official serializer's field
order and explicit presence promise), and arbitrary bytes decode to a value
or a ProtocolError, never another exception (the mock must close such a
connection with a cause, not crash in it).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.protocol import ProtocolError

protobuf = pytest.importorskip("harness.protocol.protobuf")
proto_messages = pytest.importorskip("harness.protocol.proto_messages")
MessageType = protobuf.MessageType

TYPES: dict[str, Any] = {name: value for name, value in sorted(vars(proto_messages).items())
                         if isinstance(value, MessageType)}
PROPS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "bool": st.booleans(),
    "double": st.floats(allow_nan=False),
    "string": st.text(max_size=20),
    "bytes": st.binary(max_size=20),
}


def values_of(mt: Any, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """A dict of a random subset of the type's fields, each a valid value."""
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for f in mt.fields:
        if f.is_message:
            if depth >= 3:
                continue
            one: st.SearchStrategy[Any] = st.deferred(lambda t=f.type, d=depth: values_of(t, d + 1))
        else:
            one = SCALARS[f.type]
        parts[f.name] = st.lists(one, min_size=1, max_size=3) if f.repeated else one
    return st.fixed_dictionaries({}, optional=parts)


@pytest.mark.parametrize("name", sorted(TYPES))
@PROPS
@given(data=st.data())
def test_every_message_type_round_trips(name: str, data: st.DataObject) -> None:
    mt = TYPES[name]
    values = data.draw(values_of(mt))
    wire = protobuf.encode(mt, values)
    decoded = protobuf.decode(mt, wire)
    assert decoded == values
    assert protobuf.encode(mt, decoded) == wire  # byte for byte


@pytest.mark.parametrize("name", sorted(TYPES)[:: max(1, len(TYPES) // 8)])
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_protocol_error(name: str, data: bytes) -> None:
    try:
        protobuf.decode(TYPES[name], data)
    except ProtocolError:
        pass
