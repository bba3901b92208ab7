"""The fault dimension: every named mock fault, through every client, shows
the symptom users of that client report, bounded by the harness's own
timeout.

Per fault the client-visible effect is asserted (the phase a connect stops
in, the error codes a connected client receives, the CLOSE_WAIT sockets
the kernel shows), and each test fills one row of the fault x client ->
outcome table (suites/conftest.py writes it at session end).

Timing rules: where a failure is expected the connect timeout is short
(FAIL_TIMEOUT); elapsed times are bounded generously (SLACK: ibapi's
teardown alone may take a second), and injected delays are checked as
ratios, never tightly. Every wait for data is an awaited event or future
with a timeout; the only polling loops are for kernel state (the socket
table, whether a port accepts), each with a deadline.
"""

from __future__ import annotations

import pytest

from harness.clients.base import PHASE_MANAGED_ACCOUNTS, PHASE_NEXT_VALID_ID, PHASE_SERVER_VERSION, PHASE_TCP
from harness.clients.naive import NAIVE_CAUSE, NaiveClient
from harness.clients.raw import OrderRefused
from harness.scenarios import run_account_sync, run_handshake
from harness.scenarios.fault_checks import (
    HOST,
    PLACE_ORDER,
    MessageWatch,
    clean_disconnect,
    describe,
    error_codes,
    in_order,
    place_order_through,
    timed,
    wait_close_wait,
    wait_port_state,
    wire_order_reply,
)
from harness.targets.sockets import SocketTableUnavailable

FAIL_TIMEOUT = 1.5  # connect timeout where the fault must make the connect fail
SYNC_TIMEOUT = 1.0  # account-sync timeout where an end message never comes
OK_TIMEOUT = 5.0  # connect timeout where the connect must succeed
SLACK = 3.0  # generous upper bound on top of a timeout (ibapi's thread teardown, a loaded CI box)
RATIO = 0.95  # an injected delay is measured as at least this share of itself


# ---------------------------------------------------------------- handshake faults


@pytest.mark.parametrize("fault, phase, waits_for_timeout", [
    ("silent-handshake", PHASE_SERVER_VERSION, True),
    ("close-after-accept", PHASE_SERVER_VERSION, False),
    ("no-next-valid-id", PHASE_NEXT_VALID_ID, True),
], ids=["silent-handshake", "close-after-accept", "no-next-valid-id"])
async def test_handshake_fault_fails_in_its_phase(mock_gateway, gateway, client_factory, client_name, fault, phase,
                                                   waits_for_timeout, fault_matrix, record_evidence):
    """A stalled or closed handshake is a bounded failure naming the phase:
    ib_async raises its TimeoutError, the official client's endless connect
    loop is cut at the timeout, the raw client names the phase."""
    mock_gateway.set_fault(fault)
    with fault_matrix.case(fault, client_name, f"fails at {phase} within {FAIL_TIMEOUT:g}s") as row:
        evidence, elapsed = await timed(run_handshake(gateway.endpoint, client_factory(client_name), 201,
                                                       timeout=FAIL_TIMEOUT, transcript=gateway.transcript))
        row.observed = describe(evidence, elapsed)
        record_evidence(evidence)
        assert not evidence.ok and evidence.failed_phase == phase, evidence.summary_line()
        assert elapsed <= FAIL_TIMEOUT + SLACK, f"not bounded by the harness timeout: {elapsed:.2f}s"
        if waits_for_timeout:
            # The failure is the timeout firing, not something noticed early.
            assert elapsed >= FAIL_TIMEOUT * RATIO, f"failed after only {elapsed:.2f}s"
            if client_name == "ib_async":
                assert "TimeoutError" in (evidence.cause or ""), evidence.cause


@pytest.mark.parametrize("fault, phase", [
    ("delayed-accounts", PHASE_MANAGED_ACCOUNTS),
    ("delayed-next-id", PHASE_NEXT_VALID_ID),
], ids=["delayed-accounts", "delayed-next-id"])
async def test_delay_below_timeout_succeeds_late(mock_gateway, gateway, client_factory, client_name, fault, phase,
                                                  fault_matrix, record_evidence):
    delay_ms = 500
    text = f"{fault}={delay_ms}"
    mock_gateway.set_fault(text)
    with fault_matrix.case(text, client_name, f"ok, {phase} >= {delay_ms} ms") as row:
        evidence = await run_handshake(gateway.endpoint, client_factory(client_name), 205, timeout=OK_TIMEOUT,
                                       transcript=gateway.transcript)
        row.observed = describe(evidence)
        record_evidence(evidence)
        assert evidence.ok, evidence.summary_line()
        measured = evidence.measurements[f"{phase}_ms"]
        row.observed += f", {phase} {measured:.0f} ms"
        assert measured >= delay_ms * RATIO, f"{phase} after {measured} ms, the fault delays it {delay_ms} ms"


# ---------------------------------------------------------------- account-sync faults

MISSING_CHECK = {"positions": "positions_end", "account": "account_download_end", "executions": "executions_end"}
IB_ASYNC_SYNC_LOG = {"positions": "positions request timed out", "account": "account updates request timed out",
                     "executions": "executions request timed out"}


@pytest.mark.parametrize("kind", list(MISSING_CHECK))
async def test_missing_end_fails_account_sync_naming_the_piece(mock_gateway, gateway, client_factory, client_name,
                                                                kind, fault_matrix, record_evidence):
    """The connect itself may pass (ib_async logs "... request timed out" and
    carries on); the account-sync scenario must fail and say which end
    message never came."""
    text = f"missing-end={kind}"
    check = MISSING_CHECK[kind]
    mock_gateway.set_fault(text)
    client = client_factory(client_name)
    with fault_matrix.case(text, client_name, f"account_sync fails naming {check}") as row:
        evidence = await run_account_sync(gateway.endpoint, client, 210, timeout=SYNC_TIMEOUT,
                                          expect_positions=True, transcript=gateway.transcript)
        row.observed = describe(evidence)
        record_evidence(evidence)
        if client_name == "ib_async":
            # What an ib_async user sees: connectAsync returned, after logging this.
            row.observed += f"; ib_async logged {client.sync_timeouts}"
            assert IB_ASYNC_SYNC_LOG[kind] in client.sync_timeouts
        assert not evidence.ok and evidence.failed_phase == "account_sync", evidence.summary_line()
        named = evidence.checks.get(check) is False or check in (evidence.cause or "")
        assert named, f"evidence does not name {check}: cause={evidence.cause!r} checks={evidence.checks}"
        others = [name for name in MISSING_CHECK.values() if name != check]
        assert all(evidence.checks.get(name, True) for name in others), evidence.checks


# ---------------------------------------------------------------- zombie faults


async def test_client_id_stuck_blocks_the_id_not_others(mock_gateway, gateway, client_factory, client_name,
                                                        fault_matrix, record_evidence):
    text = "client-id-stuck=30"
    mock_gateway.set_fault(text)
    with fault_matrix.case(text, client_name, "same id: 326 at next_valid_id; other id: ok") as row:
        first = client_factory(client_name)
        await first.connect(HOST, gateway.endpoint.port, 220, timeout=OK_TIMEOUT)
        await first.disconnect()
        assert await mock_gateway.wait_client_id_free(220), "the mock never saw the disconnect"
        same = await run_handshake(gateway.endpoint, client_factory(client_name), 220, timeout=FAIL_TIMEOUT,
                                   transcript=gateway.transcript)
        other = await run_handshake(gateway.endpoint, client_factory(client_name), 221, timeout=OK_TIMEOUT)
        row.observed = f"same id {describe(same)}; other id {describe(other)}"
        record_evidence(same)
        assert not same.ok and same.failed_phase == PHASE_NEXT_VALID_ID, same.summary_line()
        assert 326 in error_codes(same) or "326" in (same.cause or ""), same.cause
        assert other.ok, other.summary_line()


async def test_close_wait_leak_visible_to_ss_then_handshakes_stall(mock_gateway, gateway, client_factory,
                                                                   client_name, fault_matrix, record_evidence):
    """The leaked sockets are counted in the host's socket table (the id keeps
    its `ss` name; the count is read as harness/targets/sockets.py reads it)."""
    leak = 3
    text = f"close-wait-leak={leak}"
    port = gateway.endpoint.port
    mock_gateway.set_fault(text)
    with fault_matrix.case(text, client_name, f"{leak} CLOSE_WAIT in the socket table; "
                           "next fails at server_version") as row:
        for i in range(leak):
            client = client_factory(client_name)
            await client.connect(HOST, port, 230 + i, timeout=OK_TIMEOUT)
            await clean_disconnect(client, OK_TIMEOUT)
            assert await mock_gateway.wait_client_id_free(230 + i), "the mock never saw the disconnect"
        try:
            rows = await wait_close_wait(port, leak, within=3.0)
        except SocketTableUnavailable as exc:
            pytest.skip(f"the host's socket table cannot be read: {exc}")
        row.observed = f"socket table: {len(rows)} CLOSE_WAIT on :{port}"
        assert len(rows) == leak, f"expected {leak} CLOSE_WAIT sockets on :{port}, the socket table shows {rows}"
        evidence = await run_handshake(gateway.endpoint, client_factory(client_name), 240, timeout=FAIL_TIMEOUT,
                                       transcript=gateway.transcript)
        row.observed += f"; next {describe(evidence)}"
        record_evidence(evidence)
        assert not evidence.ok and evidence.failed_phase == PHASE_SERVER_VERSION, evidence.summary_line()


async def test_red_after_disconnect_until_restart(mock_gateway, gateway, client_factory, client_name, fault_matrix,
                                                  record_evidence):
    text = "red-after-disconnect"
    mock_gateway.set_fault(text)
    with fault_matrix.case(text, client_name, "after a disconnect fails at server_version; ok after restart") as row:
        client = client_factory(client_name)
        await client.connect(HOST, gateway.endpoint.port, 245, timeout=OK_TIMEOUT)
        await clean_disconnect(client, OK_TIMEOUT)
        assert await mock_gateway.wait_client_id_free(245), "the mock never saw the disconnect"
        red = await run_handshake(gateway.endpoint, client_factory(client_name), 246, timeout=FAIL_TIMEOUT,
                                  transcript=gateway.transcript)
        record_evidence(red)
        await mock_gateway.restart()
        after = await run_handshake(gateway.endpoint, client_factory(client_name), 247, timeout=OK_TIMEOUT)
        row.observed = f"red {describe(red)}; after restart {describe(after)}"
        assert not red.ok and red.failed_phase == PHASE_SERVER_VERSION, red.summary_line()
        assert after.ok, after.summary_line()


# ---------------------------------------------------------------- faults on a live connection


async def test_connectivity_loss_reaches_a_connected_client(mock_gateway, gateway, client_factory, client_name,
                                                             fault_matrix):
    at, duration = 0.2, 0.4
    text = f"connectivity-loss={at:g},{duration:g}"
    expected = [1100, 2103, 2105, 1102, 2104, 2106]
    client = client_factory(client_name)
    result = await client.connect(HOST, gateway.endpoint.port, 250, timeout=OK_TIMEOUT)
    watch = MessageWatch(client, result)
    startup = len(watch)
    mock_gateway.set_fault(text)
    with fault_matrix.case(text, client_name, "1100, 2103, 2105 then 1102, 2104, 2106") as row:
        codes = await watch.wait_for(lambda c: in_order(expected)(c[startup:]), within=at + duration + SLACK)
        outage = codes[codes.index(1100, startup):]
        row.observed = f"received {outage}"
        assert outage == expected
        row.observed += f"; ping after restore {await client.ping(OK_TIMEOUT) * 1000:.1f} ms"


async def test_restart_drops_refuses_then_accepts(mock_gateway, gateway, client_factory, client_name, fault_matrix,
                                                  record_evidence):
    at, down = 0.2, 1.0
    text = f"restart-at={at:g},{down:g}"
    port = gateway.endpoint.port
    client = client_factory(client_name)
    await client.connect(HOST, port, 255, timeout=OK_TIMEOUT)
    mock_gateway.set_fault(text)
    try:
        with fault_matrix.case(text, client_name, "drop; tcp_connect refused while down; ok after") as row:
            await wait_port_state(port, accepting=False, within=at + SLACK)
            # The listener closes in the same step that drops every connection:
            # from here on the old connection can only fail (EOF or not connected).
            with pytest.raises((ConnectionError, TimeoutError)) as dropped:
                await client.ping(2.0)
            during = await run_handshake(gateway.endpoint, client_factory(client_name), 256, timeout=FAIL_TIMEOUT)
            record_evidence(during)
            waited = await wait_port_state(port, accepting=True, within=down + SLACK)
            after = await run_handshake(gateway.endpoint, client_factory(client_name), 257, timeout=OK_TIMEOUT)
            row.observed = (f"old connection: {type(dropped.value).__name__}; during down {describe(during)}; "
                            f"port back after {waited:.2f}s; then {describe(after)}")
            assert not during.ok and during.failed_phase == PHASE_TCP, during.summary_line()
            assert after.ok, after.summary_line()
    finally:
        # Never leave the restart half done for the fixture's own restart.
        await wait_port_state(port, accepting=True, within=down + SLACK)


# ---------------------------------------------------------------- capacity and version faults


async def test_max_server_version_below_a_clients_minimum(mock_gateway, gateway, client_factory, client_name,
                                                          fault_matrix, record_evidence):
    version = 150
    text = f"max-server-version={version}"
    mock_gateway.set_fault(text)
    client = client_factory(client_name)
    minimum = client.info.min_version or 100
    fits = minimum <= version
    expected = f"ok at v{version}" if fits else "fails at server_version"
    with fault_matrix.case(text, f"{client_name} (min {minimum})", expected) as row:
        evidence = await run_handshake(gateway.endpoint, client, 260,
                                       timeout=OK_TIMEOUT if fits else FAIL_TIMEOUT, transcript=gateway.transcript)
        row.observed = describe(evidence) + (f" at v{evidence.server_version}" if evidence.ok else "")
        record_evidence(evidence)
        if fits:
            assert evidence.ok and evidence.server_version == version, evidence.summary_line()
        else:
            assert not evidence.ok and evidence.failed_phase == PHASE_SERVER_VERSION, evidence.summary_line()
    if client_name == "raw":
        # The same Gateway seen by a raw client that offers ib_async's range.
        with fault_matrix.case(text, "raw (min 157)", "fails at server_version") as row:
            evidence = await run_handshake(gateway.endpoint, client_factory("raw", min_version=157), 261,
                                           timeout=FAIL_TIMEOUT)
            row.observed = describe(evidence)
            assert not evidence.ok and evidence.failed_phase == PHASE_SERVER_VERSION, evidence.summary_line()


async def test_max_clients_refuses_one_more(mock_gateway, gateway, client_factory, client_name, fault_matrix,
                                            record_evidence):
    await mock_gateway.restart()  # start from an empty connection table: the cap counts every connection
    cap = 2
    text = f"max-clients={cap}"
    mock_gateway.set_fault(text)
    with fault_matrix.case(text, client_name, f"{cap} connect; connection {cap + 1} fails at server_version") as row:
        for i in range(cap):
            await client_factory(client_name).connect(HOST, gateway.endpoint.port, 265 + i, timeout=OK_TIMEOUT)
        evidence = await run_handshake(gateway.endpoint, client_factory(client_name), 265 + cap,
                                       timeout=FAIL_TIMEOUT, transcript=gateway.transcript)
        row.observed = f"{cap} ok; next {describe(evidence)}"
        record_evidence(evidence)
        assert not evidence.ok and evidence.failed_phase == PHASE_SERVER_VERSION, evidence.summary_line()


async def test_latency_slows_every_reply(mock_gateway, gateway, client_factory, client_name, fault_matrix,
                                         record_evidence):
    latency_ms = 200
    text = f"latency={latency_ms}"
    mock_gateway.set_fault(text)
    with fault_matrix.case(text, client_name, f"ok, ping >= {latency_ms} ms") as row:
        evidence = await run_handshake(gateway.endpoint, client_factory(client_name), 270, timeout=OK_TIMEOUT,
                                       transcript=gateway.transcript)
        row.observed = describe(evidence)
        record_evidence(evidence)
        assert evidence.ok, evidence.summary_line()
        ping_ms = evidence.measurements["ping_ms"]
        row.observed += f", ping {ping_ms:.0f} ms"
        assert ping_ms >= latency_ms * RATIO


# ---------------------------------------------------------------- read-only API


async def test_read_only_api_rejects_orders_connection_stays(mock_gateway, gateway, client_factory, client_name,
                                                             fault_matrix):
    text = "read-only-api"
    mock_gateway.set_fault(text)
    port = gateway.endpoint.port
    with fault_matrix.case(text, client_name, "order gets error 321, connection stays up") as row:
        client = client_factory(client_name)
        result = await client.connect(HOST, port, 275, timeout=OK_TIMEOUT)
        if client_name == "raw":
            with pytest.raises(OrderRefused):
                client.send(PLACE_ORDER)  # the harness's own client never sends an order
            code, message = await wire_order_reply(mock_gateway, 276, OK_TIMEOUT)
            row.observed = f"raw client refuses to send; codec-level placeOrder got {code}"
        else:
            watch = MessageWatch(client, result)
            order_id = await place_order_through(mock_gateway, client_name, client, result)
            codes = await watch.wait_for(lambda c: 321 in c or 201 in c, within=OK_TIMEOUT)
            code = 321 if 321 in codes else 201
            refusal = next(msg for msg in watch if msg.code == code)
            message = refusal.message
            assert refusal.req_id == order_id, "the refusal names the order, as a Gateway's does"
            via = "errorEvent" if client_name == "ib_async" else "EWrapper.error"
            row.observed = f"{client_name} {via} got {code}"
        assert code == 321 and "Read-Only" in message, (code, message)
        ping_ms = await client.ping(OK_TIMEOUT) * 1000
        row.observed += f"; ping after {ping_ms:.1f} ms"


async def test_without_read_only_orders_get_201(mock_gateway, gateway, fault_matrix):
    """The control: the same order frame without the fault is refused as an order (201), not as read-only."""
    with fault_matrix.case("(none)", "codec", "order gets error 201, connection stays up") as row:
        code, message = await wire_order_reply(mock_gateway, 277, OK_TIMEOUT)
        row.observed = f"placeOrder got {code}"
        assert code == 201, (code, message)


# ---------------------------------------------------------------- field report 003: the naive account check


@pytest.mark.parametrize("name", ["naive", "raw", "ib_async"])
async def test_naive_account_check_fails_where_event_wait_succeeds(mock_gateway, gateway, client_factory, name,
                                                                   harness_config, fault_matrix, record_evidence):
    """managedAccounts 2 s after startApi: the naive worker (read once, sleep
    1 s, read again) gives up; waiting for the event (RawClient through
    connect_until_ready, which run_handshake uses) and unmodified ib_async
    both succeed once the accounts arrive."""
    if name == "ib_async" and name not in harness_config.clients:
        pytest.skip("ib_async not selected with --client")
    delay = 2.0
    text = f"delayed-accounts={delay * 1000:g}"
    mock_gateway.set_fault(text)
    client = NaiveClient() if name == "naive" else client_factory(name)
    expected = "fails at managed_accounts (gave up)" if name == "naive" else f"ok, managed_accounts >= {delay:g}s"
    with fault_matrix.case(text, name, expected) as row:
        evidence, elapsed = await timed(run_handshake(gateway.endpoint, client, 280, timeout=OK_TIMEOUT,
                                                       transcript=gateway.transcript))
        row.observed = describe(evidence, elapsed)
        record_evidence(evidence)
        if name == "naive":
            assert not evidence.ok and evidence.failed_phase == PHASE_MANAGED_ACCOUNTS, evidence.summary_line()
            assert evidence.cause == NAIVE_CAUSE
            assert elapsed < delay, f"the naive client should give up before the accounts come ({elapsed:.2f}s)"
        else:
            assert evidence.ok, evidence.summary_line()
            measured = evidence.measurements[f"{PHASE_MANAGED_ACCOUNTS}_ms"] / 1000
            row.observed += f", managed_accounts at {measured:.2f}s"
            assert measured >= delay
