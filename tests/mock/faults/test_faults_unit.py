"""Fault parsing and the fault set: every named fault's good and bad values,
and the one error message (with the valid list) the CLI, the control
endpoint and MockGateway all give."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from harness.mock import MockGateway
from harness.mock.faults import (
    END_KINDS,
    FAULT_TYPES,
    SPECS,
    UNTIL_RESTART,
    FaultError,
    FaultSet,
    parse_fault,
    valid_faults_text,
)
from harness.protocol.versions import PROTOCOL_MAX
from tests.support import ROOT

ALL_FAULTS = [
    "silent-handshake", "close-after-accept", "delayed-accounts", "delayed-next-id", "no-next-valid-id",
    "missing-end", "client-id-stuck", "close-wait-leak", "red-after-disconnect", "connectivity-loss",
    "restart-at", "max-server-version", "max-clients", "latency", "read-only-api", "api-wedge",
    "closed-after-start-api", "nightly-reset",
]
FLAGS = ["silent-handshake", "close-after-accept", "no-next-valid-id", "red-after-disconnect", "read-only-api"]


def test_the_named_faults() -> None:
    assert set(ALL_FAULTS) <= set(SPECS)
    # A fault added later is one module of harness/mock/faults plus its own
    # test, tests/mock/faults/test_<module>.py beside this file (the registry finds the module by itself).
    for name in set(SPECS) - set(ALL_FAULTS):
        module = FAULT_TYPES[name].__module__.rsplit(".", 1)[-1]
        assert (Path(__file__).parent / f"test_{module}.py").is_file(), f"fault {name} has no test_{module}.py"
    for spec in SPECS.values():
        assert spec.description
        assert spec.usage == (f"{spec.name}={spec.value_help}" if spec.value_help else spec.name)


GOOD = [
    *[(f"{flag}{suffix}", flag, True) for flag in FLAGS for suffix in ("", "=", "=1", "=true", "=on", "=yes")],
    ("delayed-accounts=2000", "delayed-accounts", 2.0),
    ("delayed-accounts=0", "delayed-accounts", 0.0),
    ("delayed-accounts=1.5", "delayed-accounts", 0.0015),
    ("delayed-next-id=250", "delayed-next-id", 0.25),
    ("missing-end=positions", "missing-end", frozenset({"positions"})),
    ("missing-end=positions,account", "missing-end", frozenset({"positions", "account"})),
    (" missing-end= executions , account-summary ", "missing-end", frozenset({"executions", "account-summary"})),
    (f"missing-end={','.join(END_KINDS)}", "missing-end", frozenset(END_KINDS)),
    ("client-id-stuck", "client-id-stuck", UNTIL_RESTART),
    ("client-id-stuck=", "client-id-stuck", UNTIL_RESTART),
    ("client-id-stuck=restart", "client-id-stuck", UNTIL_RESTART),
    ("client-id-stuck=forever", "client-id-stuck", UNTIL_RESTART),
    ("client-id-stuck=30", "client-id-stuck", 30.0),
    ("client-id-stuck=0.5", "client-id-stuck", 0.5),
    ("close-wait-leak", "close-wait-leak", 5),
    ("close-wait-leak=1", "close-wait-leak", 1),
    ("close-wait-leak=12", "close-wait-leak", 12),
    ("connectivity-loss=10,5", "connectivity-loss", (10.0, 5.0)),
    ("connectivity-loss=0,0.5", "connectivity-loss", (0.0, 0.5)),
    ("restart-at=10", "restart-at", (10.0, 5.0)),
    ("restart-at=0.2,1", "restart-at", (0.2, 1.0)),
    ("max-server-version=150", "max-server-version", 150),
    ("max-server-version=100", "max-server-version", 100),
    ("max-server-version=200", "max-server-version", 200),
    (f"max-server-version={PROTOCOL_MAX}", "max-server-version", PROTOCOL_MAX),
    ("max-clients=0", "max-clients", 0),
    ("max-clients=3", "max-clients", 3),
    ("latency=200", "latency", (0.2, 0.0)),
    ("latency=200,50", "latency", (0.2, 0.05)),
    ("latency=0", "latency", (0.0, 0.0)),
]


@pytest.mark.parametrize("text, name, value", GOOD, ids=[g[0].strip() for g in GOOD])
def test_parse_good_values(text: str, name: str, value: object) -> None:
    got_name, got_value = parse_fault(text)
    assert got_name == name
    if isinstance(value, float):
        assert math.isclose(got_value, value)
    elif isinstance(value, tuple):
        assert all(math.isclose(a, b) for a, b in zip(got_value, value, strict=True))
    else:
        assert got_value == value
    assert type(got_value) is type(value)


BAD = [
    *[(f"{flag}=2", "takes no value") for flag in FLAGS],
    *[(f"{flag}=no", "takes no value") for flag in FLAGS],
    ("delayed-accounts", "needs a value"),
    ("delayed-accounts=", "needs a value"),
    ("delayed-accounts=soon", "is not a number"),
    ("delayed-accounts=-1", "below the minimum 0"),
    ("delayed-next-id", "needs a value"),
    ("delayed-next-id=1e", "is not a number"),
    ("missing-end", "no kind"),
    ("missing-end=", "no kind"),
    ("missing-end=orders", "orders is not one of"),
    ("missing-end=positions,bogus", "bogus is not one of"),
    ("client-id-stuck=-5", "below the minimum 0"),
    ("client-id-stuck=later", "is not a number"),
    ("close-wait-leak=0", "below the minimum 1"),
    ("close-wait-leak=2.5", "is not a whole number"),
    ("close-wait-leak=many", "is not a whole number"),
    ("connectivity-loss", "needs connectivity-loss=AT,FOR"),
    ("connectivity-loss=10", "needs two values"),
    ("connectivity-loss=1,2,3", "needs connectivity-loss=AT,FOR"),
    ("connectivity-loss=x,1", "is not a number"),
    ("connectivity-loss=1,-1", "below the minimum 0"),
    ("restart-at", "needs restart-at=T[,DOWN]"),
    ("restart-at=,5", "needs restart-at=T[,DOWN]"),
    ("restart-at=-1", "below the minimum 0"),
    ("max-server-version", "needs a value"),
    ("max-server-version=99", "below the minimum 100"),
    (f"max-server-version={PROTOCOL_MAX + 1}", f"above {PROTOCOL_MAX}"),
    ("max-server-version=150.5", "is not a whole number"),
    ("max-clients", "needs a value"),
    ("max-clients=-1", "below the minimum 0"),
    ("max-clients=two", "is not a whole number"),
    ("latency", "needs latency=MS[,JITTER]"),
    ("latency=-5", "below the minimum 0"),
    ("latency=5,x", "is not a number"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[b[0] for b in BAD])
def test_parse_bad_values(text: str, message: str) -> None:
    with pytest.raises(FaultError) as info:
        parse_fault(text)
    assert message in str(info.value)
    assert text.partition("=")[0] in str(info.value)  # the message names the fault


def test_fault_error_is_a_value_error() -> None:
    assert issubclass(FaultError, ValueError)


@pytest.mark.parametrize("text", ["nope", "nope=1", "Silent-Handshake", "silent_handshake", "", "=5"])
def test_unknown_fault_lists_the_valid_ones(text: str) -> None:
    with pytest.raises(FaultError) as info:
        parse_fault(text)
    message = str(info.value)
    assert message.startswith(f"unknown fault {text.partition('=')[0].strip()!r}; valid: ")
    for spec in SPECS.values():
        assert spec.usage in message
    assert valid_faults_text() in message


# ---------------------------------------------------------------- FaultSet


def test_fault_set_set_replace_and_describe() -> None:
    faults = FaultSet()
    assert "latency" not in faults and faults.describe() == [] and faults.get("latency", "dflt") == "dflt"
    before = time.monotonic()
    assert faults.set(" latency=200 ") == "latency"
    assert faults.set("silent-handshake") == "silent-handshake"
    assert "latency" in faults and faults.get("latency") == (0.2, 0.0)
    assert faults.describe() == ["latency=200", "silent-handshake"]
    assert faults.set_at["latency"] >= before
    first_set = faults.set_at["latency"]
    faults.set("latency=50,10")  # replaces, and restarts its clock
    assert faults.get("latency") == (0.05, 0.01)
    assert faults.describe() == ["latency=50,10", "silent-handshake"]
    assert faults.set_at["latency"] >= first_set


def test_fault_set_rejects_bad_text_and_keeps_state() -> None:
    faults = FaultSet()
    faults.set("latency=200")
    for text in ("latency=-1", "nope"):
        with pytest.raises(FaultError):
            faults.set(text)
    assert faults.describe() == ["latency=200"] and faults.get("latency") == (0.2, 0.0)


def test_fault_set_clear_one_and_all() -> None:
    faults = FaultSet()
    for text in ("silent-handshake", "max-clients=3", "missing-end=positions"):
        faults.set(text)
    faults.clear("max-clients")
    assert "max-clients" not in faults and faults.describe() == ["silent-handshake", "missing-end=positions"]
    assert "max-clients" not in faults.raw and "max-clients" not in faults.set_at
    faults.clear("read-only-api")  # valid but not set: nothing to do
    assert len(faults.active) == 2
    with pytest.raises(FaultError, match="unknown fault 'nope'; valid: "):
        faults.clear("nope")
    faults.clear()
    assert faults.active == {} and faults.raw == {} and faults.set_at == {} and faults.describe() == []


# ---------------------------------------------------------------- MockGateway


@pytest.mark.parametrize("faults", [["nope"], ["silent-handshake", "latency=x"], ["max-server-version=999"]])
def test_mock_gateway_rejects_a_bad_fault_before_starting(faults: list[str]) -> None:
    with pytest.raises(FaultError):
        MockGateway(port=0, faults=faults)


async def test_mock_gateway_set_and_clear_at_run_time() -> None:
    async with MockGateway(port=0, faults=["latency=10"]) as gw:
        assert gw.state()["faults"] == ["latency=10"]
        assert gw.set_fault("max-clients=4") == "max-clients"
        assert gw.effective_max_clients == 4
        with pytest.raises(FaultError):
            gw.set_fault("max-clients=lots")
        assert gw.effective_max_clients == 4
        gw.set_fault("max-server-version=150")
        assert gw.effective_max_server_version == 150 and gw.state()["max_server_version"] == 150
        gw.clear_fault("max-server-version")
        assert gw.effective_max_server_version == gw.profile.max_server_version
        with pytest.raises(FaultError):
            gw.clear_fault("nope")
        gw.clear_fault()
        assert gw.state()["faults"] == [] and gw.effective_max_clients == gw.max_clients


# The start-up path's faults (harness/mock/requests_market.py), named by test_the_fifteen_named_faults too.
STARTUP_FLAGS = ["hmds-pacing", "hmds-farm-broken", "market-data-farm-broken"]
ALL_FAULTS += [*STARTUP_FLAGS, "slow-contract-details"]


@pytest.mark.parametrize("flag", STARTUP_FLAGS)
def test_startup_path_flags_take_no_value(flag: str) -> None:
    assert parse_fault(flag) == (flag, True)
    with pytest.raises(FaultError, match="takes no value"):
        parse_fault(f"{flag}=2")


def test_slow_contract_details_is_milliseconds() -> None:
    assert parse_fault("slow-contract-details=250") == ("slow-contract-details", 0.25)


def test_with_no_fault_every_hook_is_neutral() -> None:
    import random

    faults = FaultSet()
    assert faults.max_clients(32) == 32 and faults.max_server_version(178) == 178
    assert faults.startup_delay(15) == 0.0 and not faults.withholds(9) and faults.reply_delay(random.Random(0)) is None
    assert faults.farm_notice(2104, "ok") == (2104, "ok") and not faults.read_only()
    assert faults.history_refusal() is None and faults.contract_details_delay() == 0.0 and not faults.quotes_blocked()


def test_the_mock_asks_hooks_instead_of_checking_fault_names() -> None:
    """The session, the gateway, the app desk and the replayer never test a
    fault by name: a fault's behaviour lives in its own module."""
    import re

    root = ROOT / "harness"
    names = "|".join(re.escape(n) for n in SPECS)
    check = re.compile(rf"[\"']({names})[\"']\s+(not\s+)?in\b|\.get\([\"']({names})[\"']")
    for path in ("mock/session.py", "mock/gateway.py", "mock/requests_market.py", "recording/replay.py"):
        hits = [line for line in (root / path).read_text().splitlines() if check.search(line)]
        assert not hits, f"{path} checks faults by name: {hits}"
