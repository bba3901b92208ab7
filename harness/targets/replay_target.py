"""A recording replayed by the mock, as a target: `--gateway replay:FILE`.

Why a target: the suites then run against the behaviour of the exact
Gateway build a team recorded (`ibgw record`), in CI, without that
Gateway. The endpoint says it is a replay (kind, the recorded build and
server version), and `divergences` lists every request the recording
never saw, so a suite can tell "the client changed" from "the Gateway did".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.config import env as config_env
from .base import BaseTarget, Endpoint, TargetSpecError

TARGET_REPLAY = "replay"


class ReplayTarget(BaseTarget):
    kind = TARGET_REPLAY

    def __init__(self, path: Path, *, speed: float | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        from ..recording import RecordingError, load

        try:
            self.recording = load(path)  # fails early, naming the bad line
        except RecordingError as exc:
            raise TargetSpecError(str(exc)) from None
        self.path = path
        # IBGW_REPLAY_SPEED=0 replays without the recorded delays (faster CI).
        self.speed = speed if speed is not None else float(config_env("IBGW_REPLAY_SPEED") or 1)
        self.host = host
        self.port = port
        self.gateway: Any = None  # the MockGateway (transcripts, fault control)
        self.replayer: Any = None

    async def start(self) -> Endpoint:
        from ..recording.replay import replay_gateway

        self.gateway, self.replayer = replay_gateway(self.recording, speed=self.speed, host=self.host, port=self.port)
        await self.gateway.start()
        header = self.recording.header
        return Endpoint(kind=self.kind, host=self.host, port=self.gateway.port, label=f"replay:{self.path.name}",
                        build=header.gateway_build or "unknown", profile="replay",
                        details={"max_server_version": self.gateway.profile.max_server_version,
                                 "recording": str(self.path), "recorded_at": header.recorded_at,
                                 "replay_speed": self.speed})

    @property
    def divergences(self) -> list[dict[str, Any]]:
        """Every divergence so far (requests the recording never saw, ...)."""
        return [d.to_dict() for d in self.replayer.divergences] if self.replayer is not None else []

    @property
    def mock(self) -> Any:
        return self.gateway

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None


__all__ = ["TARGET_REPLAY", "ReplayTarget"]
