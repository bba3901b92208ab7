"""The mock Gateway under structure-aware fuzzing: CI's bounded share.

benchmarks/fuzz_mock.py generates connections with hypothesis (valid
handshakes followed by mutated frames of every message type, in both eras
(text, and binary-id/protobuf at 201-226), raw mutations
before and during the handshake, oversized length prefixes, floods, slowloris,
clients that never read) and checks the mock in its own process: it stays
up, a healthy client's pings are all answered, every connection ends with a
logged cause, no internal error, buffers and RSS bounded. CI runs
IBGW_FUZZ_INPUTS of them (default 2000, which reach
the same coverage bars); the full run is `make fuzz` (100000 inputs).

Plus regression tests for what the fuzzer found: 5,000-digit numbers where
the codec called int() (ValueError -> "internal error" instead of a
protocol error with a cause).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.core.config import env as config_env
from harness.protocol import ProtocolError, message_id, parse_hello, parse_server_hello
from tests.support.processes import run

INPUTS = int(config_env("IBGW_FUZZ_INPUTS"))
SEED = int(config_env("IBGW_FUZZ_SEED"))


RUN_TIMEOUT_S = 60 + INPUTS * 0.05  # the fuzz child's bound; pytest's own timeout leaves it room to report


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_fuzzed_mock_stays_up_serves_others_and_closes_every_bad_connection(tmp_path: Path) -> None:
    out = tmp_path / "fuzz.json"
    proc = run([sys.executable, "-m", "benchmarks.fuzz_mock", "--inputs", str(INPUTS), "--seed", str(SEED),
                "--json", str(out)], timeout=RUN_TIMEOUT_S)
    print(proc.stdout)  # the report: shown with -s or on failure
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["failures"] == []
    assert report["inputs_run"] == INPUTS
    mock = report["mock"]
    assert mock["alive"] and mock["internal_errors"] == []
    assert mock["accepted"] == INPUTS + 1 == mock["closed_with_logged_cause"]  # + the healthy client
    assert report["pings"]["count"] > 0 and report["pings"]["failed"] == 0
    # Every kind of input was generated, and the bad ones were closed by the mock.
    kinds = set(report["inputs_by_kind"])
    assert {"mutated-frames", "protobuf-era-frames", "during-handshake", "raw-handshake-mutation",
            "oversized-length-prefix", "tiny-frame-flood", "slowloris", "never-reads", "near-limit-frame"} <= kinds
    assert report["config"]["profile"] == "10.50"  # negotiates up to 226: both eras under fuzz
    assert report["closed_by_mock_by_kind"].get("oversized-length-prefix", 0) == \
        report["inputs_by_kind"]["oversized-length-prefix"]
    # The handler code reached: what is left is fault-injection and idle-timeout branches.
    assert report["coverage"]["harness/mock/session.py"]["percent"] >= 80.0
    # The protobuf era's decode path was reached (wire ids above 200, the proto3 codec, the bridge).
    for rel in ("harness/protocol/wire.py", "harness/protocol/protobuf.py", "harness/protocol/proto_bridge.py"):
        assert report["coverage"][rel]["percent"] >= 60.0, rel


@pytest.mark.parametrize("text", [b"v" + b"9" * 5000, b"v1.." + b"9" * 5000, b"v" + b"1" * 10])
def test_hello_with_a_huge_version_is_a_protocol_error(text: bytes) -> None:
    with pytest.raises(ProtocolError, match="bad version range"):
        parse_hello(text)


def test_message_id_with_thousands_of_digits_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="message id of 5000 digits"):
        message_id(["9" * 5000, "1"])
    assert message_id(["123456789"]) == 123456789


def test_server_hello_with_a_huge_version_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="is not a number"):
        parse_server_hello(b"9" * 5000 + b"\x0020261125 10:00:00 EST\x00")
