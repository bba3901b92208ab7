"""BaseTarget: every target answers is_live, mock, restart(), logs() and
close_wait_count(), so callers never probe a target with hasattr/getattr."""

from __future__ import annotations

import pytest

from harness.targets import BaseTarget, ExternalTarget, MockTarget, TargetUnsupported, parse_target


def test_every_built_in_target_is_a_base_target() -> None:
    assert isinstance(parse_target("mock"), BaseTarget)
    assert isinstance(parse_target("127.0.0.1:4002"), BaseTarget)
    from harness.targets.container_target import ContainerTarget
    from harness.targets.replay_target import ReplayTarget

    assert issubclass(ContainerTarget, BaseTarget) and issubclass(ReplayTarget, BaseTarget)


async def test_the_mock_target_answers_for_its_gateway() -> None:
    target = MockTarget()
    assert not target.is_live and target.mock is None and not target.can_restart
    endpoint = await target.start()
    try:
        gw = target.mock
        assert gw is not None and gw.port == endpoint.port and target.can_restart
        await target.restart()
        assert gw.restarts == 1 and gw.state()["listening"]
        count = target.close_wait_count()
        assert count is None or count == 0  # None only where /proc/net is absent
        assert target.logs() == ""
    finally:
        await target.stop()
    assert target.mock is None


async def test_an_external_gateway_is_live_and_not_restarted_by_the_harness() -> None:
    remote = ExternalTarget("192.0.2.1", 4002)  # TEST-NET: never contacted
    assert remote.is_live and remote.mock is None and not remote.can_restart
    assert remote.close_wait_count() is None  # another host's sockets are not visible
    with pytest.raises(TargetUnsupported, match="restart the Gateway yourself"):
        await remote.restart()
    assert isinstance(ExternalTarget("127.0.0.1", 1).close_wait_count(), (int, type(None)))
