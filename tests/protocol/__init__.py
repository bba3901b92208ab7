"""Tests of the wire codec (harness/protocol): framing, messages, the protobuf era, market messages."""
