"""The rules probe and doctor share (scenarios/judge.py), on recorded facts."""

from __future__ import annotations

from harness.clients.base import GatewayMessage
from harness.clients.raw import version_out_of_range
from harness.protocol.peer import non_tws_cause
from harness.scenarios.judge import closed_after_accept, connectivity_lost, failure_causes, version_range


def keys(causes: list | None) -> list[str] | None:
    return None if causes is None else [c.key for c in causes]


def test_connectivity_lost_until_1101_or_1102() -> None:
    lost = GatewayMessage(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.", 0.5)
    assert connectivity_lost([GatewayMessage(-1, 2104, "ok"), lost]) is lost
    assert connectivity_lost([lost, GatewayMessage(-1, 1102, "restored - data maintained")]) is None
    assert connectivity_lost([lost, GatewayMessage(-1, 1101, "restored - data lost")]) is None
    later = GatewayMessage(-1, 1100, "lost again", 9.0)
    assert connectivity_lost([lost, GatewayMessage(-1, 1102, "restored"), later]) is later


def test_version_range_reads_both_numbers() -> None:
    text = version_out_of_range(150, 157, 178, "ib_async")
    assert version_range(text) == (150, "ib_async", 157)
    assert keys(failure_causes("server_version", text)) == ["version_range"]


def test_first_bytes_settle_a_wrong_port() -> None:
    assert keys(failure_causes("server_version", non_tws_cause("HTTP", b"HTTP/1.1 400"))) == ["non_tws"]


def test_silence_and_close_need_more_evidence() -> None:
    assert failure_causes("server_version", "no answer within 2 s") is None
    assert failure_causes("server_version", "the Gateway closed the connection before the version reply") is None


def test_a_bare_close_after_start_api_lists_both_candidates() -> None:
    assert keys(failure_causes("next_valid_id", "the Gateway closed the connection")) == ["id_stuck", "api_not_ready"]
    assert keys(failure_causes("next_valid_id", "error 326", [326])) == ["id_stuck"]
    assert keys(failure_causes("next_valid_id", "no answer within 2 s")) == ["api_not_ready"]


def test_client_cap_is_a_candidate_only_when_connections_are_seen() -> None:
    assert keys(closed_after_accept(0, 4002).causes) == ["forwarder"]
    assert keys(closed_after_accept(None, 4002).causes) == ["forwarder", "client_cap"]
    assert keys(closed_after_accept(2, 4002).causes) == ["forwarder", "client_cap"]
    assert keys(closed_after_accept(32, 4002).causes) == ["client_cap", "forwarder"]
    assert "32 established connection(s) to port 4002" in closed_after_accept(32, 4002).detail
