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

Only the tests and their assertions live here: the steps they drive a fault
and observe it with are harness/scenarios/fault_checks.py (pytest-free), the
`fault_bench` and `fault_matrix` fixtures are suites/conftest.py.
"""

from __future__ import annotations

import pytest

from harness.clients.base import PHASE_MANAGED_ACCOUNTS, PHASE_NEXT_VALID_ID, PHASE_SERVER_VERSION, PHASE_TCP
from harness.clients.naive import NAIVE_CAUSE, NaiveClient
from harness.clients.raw import OrderRefused
from harness.scenarios import run_account_sync
from harness.scenarios.fault_checks import (
    PLACE_ORDER,
    MessageWatch,
    clean_disconnect,
    describe,
    error_codes,
    in_order,
    order_refusal_through,
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
async def test_handshake_fault_fails_in_its_phase(fault_bench, client_name, fault, phase, waits_for_timeout):
    """A stalled or closed handshake is a bounded failure naming the phase:
    ib_async raises its TimeoutError, the official client's endless connect
    loop is cut at the timeout, the raw client names the phase."""
    with fault_bench.case(fault, client_name, f"fails at {phase} within {FAIL_TIMEOUT:g}s") as row:
        evidence, elapsed = await fault_bench.handshake(client_name, 201, FAIL_TIMEOUT)
        row.observed = describe(evidence, elapsed)
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
async def test_delay_below_timeout_succeeds_late(fault_bench, client_name, fault, phase):
    delay_ms = 500
    with fault_bench.case(f"{fault}={delay_ms}", client_name, f"ok, {phase} >= {delay_ms} ms") as row:
        evidence, _ = await fault_bench.handshake(client_name, 205, OK_TIMEOUT)
        row.observed = describe(evidence)
        assert evidence.ok, evidence.summary_line()
        measured = evidence.measurements[f"{phase}_ms"]
        row.observed += f", {phase} {measured:.0f} ms"
        assert measured >= delay_ms * RATIO, f"{phase} after {measured} ms, the fault delays it {delay_ms} ms"


# ---------------------------------------------------------------- account-sync faults

MISSING_CHECK = {"positions": "positions_end", "account": "account_download_end", "executions": "executions_end"}
IB_ASYNC_SYNC_LOG = {"positions": "positions request timed out", "account": "account updates request timed out",
                     "executions": "executions request timed out"}


@pytest.mark.parametrize("kind", list(MISSING_CHECK))
async def test_missing_end_fails_account_sync_naming_the_piece(fault_bench, client_name, kind):
    """The connect itself may pass (ib_async logs "... request timed out" and
    carries on); the account-sync scenario must fail and say which end
    message never came."""
    check = MISSING_CHECK[kind]
    client = fault_bench.client_factory(client_name)
    with fault_bench.case(f"missing-end={kind}", client_name, f"account_sync fails naming {check}") as row:
        evidence = await run_account_sync(fault_bench.gateway.endpoint, client, 210, timeout=SYNC_TIMEOUT,
                                          expect_positions=True, transcript=fault_bench.gateway.transcript)
        row.observed = describe(evidence)
        fault_bench.record_evidence(evidence)
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


async def test_client_id_stuck_blocks_the_id_not_others(fault_bench, client_name):
    with fault_bench.case("client-id-stuck=30", client_name, "same id: 326 at next_valid_id; other id: ok") as row:
        first, _ = await fault_bench.connect(client_name, 220, OK_TIMEOUT)
        await first.disconnect()
        assert await fault_bench.mock.wait_client_id_free(220), "the mock never saw the disconnect"
        same, _ = await fault_bench.handshake(client_name, 220, FAIL_TIMEOUT)
        other, _ = await fault_bench.handshake(client_name, 221, OK_TIMEOUT, record=False)
        row.observed = f"same id {describe(same)}; other id {describe(other)}"
        assert not same.ok and same.failed_phase == PHASE_NEXT_VALID_ID, same.summary_line()
        assert 326 in error_codes(same) or "326" in (same.cause or ""), same.cause
        assert other.ok, other.summary_line()


async def test_close_wait_leak_visible_to_ss_then_handshakes_stall(fault_bench, client_name):
    """The leaked sockets are counted in the host's socket table (the id keeps
    its `ss` name; the count is read as harness/targets/sockets.py reads it)."""
    leak, port = 3, fault_bench.port
    expected = f"{leak} CLOSE_WAIT in the socket table; next fails at server_version"
    with fault_bench.case(f"close-wait-leak={leak}", client_name, expected) as row:
        for i in range(leak):
            client, _ = await fault_bench.connect(client_name, 230 + i, OK_TIMEOUT)
            await clean_disconnect(client, OK_TIMEOUT)
            assert await fault_bench.mock.wait_client_id_free(230 + i), "the mock never saw the disconnect"
        try:
            rows = await wait_close_wait(port, leak, within=3.0)
        except SocketTableUnavailable as exc:
            pytest.skip(f"the host's socket table cannot be read: {exc}")
        row.observed = f"socket table: {len(rows)} CLOSE_WAIT on :{port}"
        assert len(rows) == leak, f"expected {leak} CLOSE_WAIT sockets on :{port}, the socket table shows {rows}"
        evidence, _ = await fault_bench.handshake(client_name, 240, FAIL_TIMEOUT)
        row.observed += f"; next {describe(evidence)}"
        assert not evidence.ok and evidence.failed_phase == PHASE_SERVER_VERSION, evidence.summary_line()


async def test_red_after_disconnect_until_restart(fault_bench, client_name):
    expected = "after a disconnect fails at server_version; ok after restart"
    with fault_bench.case("red-after-disconnect", client_name, expected) as row:
        client, _ = await fault_bench.connect(client_name, 245, OK_TIMEOUT)
        await clean_disconnect(client, OK_TIMEOUT)
        assert await fault_bench.mock.wait_client_id_free(245), "the mock never saw the disconnect"
        red, _ = await fault_bench.handshake(client_name, 246, FAIL_TIMEOUT)
        await fault_bench.mock.restart()
        after, _ = await fault_bench.handshake(client_name, 247, OK_TIMEOUT, record=False)
        row.observed = f"red {describe(red)}; after restart {describe(after)}"
        assert not red.ok and red.failed_phase == PHASE_SERVER_VERSION, red.summary_line()
        assert after.ok, after.summary_line()


# ---------------------------------------------------------------- faults on a live connection


async def test_connectivity_loss_reaches_a_connected_client(fault_bench, client_name):
    at, duration = 0.2, 0.4
    expected = [1100, 2103, 2105, 1102, 2104, 2106]
    client, result = await fault_bench.connect(client_name, 250, OK_TIMEOUT)
    watch = MessageWatch(client, result)
    startup = len(watch)
    with fault_bench.case(f"connectivity-loss={at:g},{duration:g}", client_name,
                          "1100, 2103, 2105 then 1102, 2104, 2106") as row:
        codes = await watch.wait_for(lambda c: in_order(expected)(c[startup:]), within=at + duration + SLACK)
        outage = codes[codes.index(1100, startup):]
        row.observed = f"received {outage}"
        assert outage == expected
        row.observed += f"; ping after restore {await client.ping(OK_TIMEOUT) * 1000:.1f} ms"


async def test_restart_drops_refuses_then_accepts(fault_bench, client_name):
    at, down = 0.2, 1.0
    port = fault_bench.port
    client, _ = await fault_bench.connect(client_name, 255, OK_TIMEOUT)
    try:
        with fault_bench.case(f"restart-at={at:g},{down:g}", client_name,
                              "drop; tcp_connect refused while down; ok after") as row:
            await wait_port_state(port, accepting=False, within=at + SLACK)
            # The listener closes in the same step that drops every connection:
            # from here on the old connection can only fail (EOF or not connected).
            with pytest.raises((ConnectionError, TimeoutError)) as dropped:
                await client.ping(2.0)
            during, _ = await fault_bench.handshake(client_name, 256, FAIL_TIMEOUT)
            waited = await wait_port_state(port, accepting=True, within=down + SLACK)
            after, _ = await fault_bench.handshake(client_name, 257, OK_TIMEOUT, record=False)
            row.observed = (f"old connection: {type(dropped.value).__name__}; during down {describe(during)}; "
                            f"port back after {waited:.2f}s; then {describe(after)}")
            assert not during.ok and during.failed_phase == PHASE_TCP, during.summary_line()
            assert after.ok, after.summary_line()
    finally:
        # Never leave the restart half done for the fixture's own restart.
        await wait_port_state(port, accepting=True, within=down + SLACK)


# ---------------------------------------------------------------- capacity and version faults


async def test_max_server_version_below_a_clients_minimum(fault_bench, client_name):
    version = 150
    text = f"max-server-version={version}"
    client = fault_bench.client_factory(client_name)
    minimum = client.info.min_version or 100
    fits = minimum <= version
    expected = f"ok at v{version}" if fits else "fails at server_version"
    with fault_bench.case(text, f"{client_name} (min {minimum})", expected) as row:
        evidence, _ = await fault_bench.handshake(client, 260, OK_TIMEOUT if fits else FAIL_TIMEOUT)
        row.observed = describe(evidence) + (f" at v{evidence.server_version}" if evidence.ok else "")
        if fits:
            assert evidence.ok and evidence.server_version == version, evidence.summary_line()
        else:
            assert not evidence.ok and evidence.failed_phase == PHASE_SERVER_VERSION, evidence.summary_line()
    if client_name == "raw":
        # The same Gateway seen by a raw client that offers ib_async's range.
        with fault_bench.case(text, "raw (min 157)", "fails at server_version", set_fault=False) as row:
            evidence, _ = await fault_bench.handshake(fault_bench.client_factory("raw", min_version=157), 261,
                                                      FAIL_TIMEOUT, record=False)
            row.observed = describe(evidence)
            assert not evidence.ok and evidence.failed_phase == PHASE_SERVER_VERSION, evidence.summary_line()


async def test_max_clients_refuses_one_more(fault_bench, client_name):
    await fault_bench.mock.restart()  # start from an empty connection table: the cap counts every connection
    cap = 2
    expected = f"{cap} connect; connection {cap + 1} fails at server_version"
    with fault_bench.case(f"max-clients={cap}", client_name, expected) as row:
        for i in range(cap):
            await fault_bench.connect(client_name, 265 + i, OK_TIMEOUT)
        evidence, _ = await fault_bench.handshake(client_name, 265 + cap, FAIL_TIMEOUT)
        row.observed = f"{cap} ok; next {describe(evidence)}"
        assert not evidence.ok and evidence.failed_phase == PHASE_SERVER_VERSION, evidence.summary_line()


async def test_latency_slows_every_reply(fault_bench, client_name):
    latency_ms = 200
    with fault_bench.case(f"latency={latency_ms}", client_name, f"ok, ping >= {latency_ms} ms") as row:
        evidence, _ = await fault_bench.handshake(client_name, 270, OK_TIMEOUT)
        row.observed = describe(evidence)
        assert evidence.ok, evidence.summary_line()
        ping_ms = evidence.measurements["ping_ms"]
        row.observed += f", ping {ping_ms:.0f} ms"
        assert ping_ms >= latency_ms * RATIO


# ---------------------------------------------------------------- read-only API


async def test_read_only_api_rejects_orders_connection_stays(fault_bench, client_name):
    with fault_bench.case("read-only-api", client_name, "order gets error 321, connection stays up") as row:
        client, result = await fault_bench.connect(client_name, 275, OK_TIMEOUT)
        if client_name == "raw":
            with pytest.raises(OrderRefused):
                client.send(PLACE_ORDER)  # the harness's own client never sends an order
            code, message = await wire_order_reply(fault_bench.mock, 276, OK_TIMEOUT)
            row.observed = f"raw client refuses to send; codec-level placeOrder got {code}"
        else:
            refusal = await order_refusal_through(fault_bench.mock, client_name, client, result, OK_TIMEOUT)
            code, message = refusal.code, refusal.message
            assert refusal.req_id == refusal.order_id, "the refusal names the order, as a Gateway's does"
            row.observed = f"{client_name} {refusal.via} got {code}"
        assert code == 321 and "Read-Only" in message, (code, message)
        ping_ms = await client.ping(OK_TIMEOUT) * 1000
        row.observed += f"; ping after {ping_ms:.1f} ms"


async def test_without_read_only_orders_get_201(fault_bench):
    """The control: the same order frame without the fault is refused as an order (201), not as read-only."""
    with fault_bench.case("(none)", "codec", "order gets error 201, connection stays up", set_fault=False) as row:
        code, message = await wire_order_reply(fault_bench.mock, 277, OK_TIMEOUT)
        row.observed = f"placeOrder got {code}"
        assert code == 201, (code, message)


# ---------------------------------------------------------------- field report 003: the naive account check


@pytest.mark.parametrize("name", ["naive", "raw", "ib_async"])
async def test_naive_account_check_fails_where_event_wait_succeeds(fault_bench, name, harness_config):
    """managedAccounts 2 s after startApi: the naive worker (read once, sleep
    1 s, read again) gives up; waiting for the event (RawClient through
    connect_until_ready, which run_handshake uses) and unmodified ib_async
    both succeed once the accounts arrive."""
    if name == "ib_async" and name not in harness_config.clients:
        pytest.skip("ib_async not selected with --client")
    delay = 2.0
    client = NaiveClient() if name == "naive" else fault_bench.client_factory(name)
    expected = "fails at managed_accounts (gave up)" if name == "naive" else f"ok, managed_accounts >= {delay:g}s"
    with fault_bench.case(f"delayed-accounts={delay * 1000:g}", name, expected) as row:
        evidence, elapsed = await fault_bench.handshake(client, 280, OK_TIMEOUT)
        row.observed = describe(evidence, elapsed)
        if name == "naive":
            assert not evidence.ok and evidence.failed_phase == PHASE_MANAGED_ACCOUNTS, evidence.summary_line()
            assert evidence.cause == NAIVE_CAUSE
            assert elapsed < delay, f"the naive client should give up before the accounts come ({elapsed:.2f}s)"
        else:
            assert evidence.ok, evidence.summary_line()
            measured = evidence.measurements[f"{PHASE_MANAGED_ACCOUNTS}_ms"] / 1000
            row.observed += f", managed_accounts at {measured:.2f}s"
            assert measured >= delay
