"""Silence after accept is not a login or 2FA in progress.

While IBC logs in or waits for 2FA the Gateway's Java listener is not up:
a direct connect is refused, a socat forwarder in front accepts and closes
at once (gnzsnz/ib-gateway-docker#119). Silence after accept comes from an
accept-incoming-connection dialog / untrusted address
(ib-api-reloaded/ib_async#18, IbcAlpha/IBC#195) or a wedged API. The
labels on each of the three signatures say so."""

from __future__ import annotations

from harness.core.net import free_port
from harness.mock.faults import SPECS
from harness.mock.gateway import MockGateway
from harness.scenarios.doctor import (
    CAUSE_DOWN,
    CAUSE_FORWARDER,
    CAUSE_NOT_LOGGED_IN,
    FIX_SILENT,
    RUNG_VERSION,
    run_doctor,
)

HOST = "127.0.0.1"
QUICK = 1.0


def test_the_silent_labels_do_not_claim_a_login_or_2fa() -> None:
    for text in (CAUSE_NOT_LOGGED_IN, FIX_SILENT, SPECS["silent-handshake"].description):
        assert "incoming-connection" in text or "incoming connection" in text, text
        assert "wedged" in text, text
    assert "2FA" not in CAUSE_NOT_LOGGED_IN and "2FA" not in FIX_SILENT
    assert "not a login or 2FA" in SPECS["silent-handshake"].description


def test_login_and_2fa_are_named_where_they_show_refused_and_forwarder_close() -> None:
    assert "2FA" in CAUSE_DOWN and "2FA" in CAUSE_FORWARDER
    assert "gnzsnz/ib-gateway-docker#119" in CAUSE_FORWARDER


async def test_doctor_on_silence_names_the_dialog_or_a_wedge() -> None:
    async with MockGateway(HOST, 0, faults=["silent-handshake"]) as gw:
        result = await run_doctor(HOST, gw.port, timeout=QUICK)
    assert result.diagnosis[0] == CAUSE_NOT_LOGGED_IN
    assert result.rung(RUNG_VERSION).remediation == FIX_SILENT


async def test_doctor_on_a_forwarder_close_names_the_login_behind_it() -> None:
    async with MockGateway(HOST, 0, faults=["close-after-accept"]) as gw:
        result = await run_doctor(HOST, gw.port, timeout=QUICK)
    assert result.diagnosis[0] == CAUSE_FORWARDER


async def test_doctor_on_a_refused_port_names_the_login_as_a_candidate() -> None:
    port = free_port(HOST)
    result = await run_doctor(HOST, port, timeout=QUICK)
    assert result.diagnosis == [CAUSE_DOWN]
