"""Gateway targets: the mock, containers (a later layer), or an external Gateway."""

from __future__ import annotations

from ..mock.profiles import UnknownProfileError
from .base import (
    TARGET_CONTAINER,
    TARGET_EXTERNAL,
    TARGET_MOCK,
    BaseTarget,
    Endpoint,
    GatewayTarget,
    TargetSpecError,
    TargetUnsupported,
)
from .external_target import ExternalTarget
from .mock_target import MockTarget

SPEC_HELP = ("use 'mock', 'mock:PROFILE', 'docker:IMAGE[:TAG]', 'replay:FILE' or 'HOST:PORT' "
             "(for example 127.0.0.1:4002)")


def parse_target(spec: str, docker_host: str | None = None) -> BaseTarget:
    """A --gateway value -> a target. Errors name the value and the valid forms.
    docker_host: the engine a docker: target starts on (None: the local one)."""
    spec = spec.strip()
    if spec == "mock" or spec.startswith("mock:"):
        profile = spec.partition(":")[2] or "default"
        try:
            return MockTarget(profile)
        except UnknownProfileError as exc:
            raise TargetSpecError(str(exc)) from None
    if spec.startswith("replay:"):
        from pathlib import Path

        from .replay_target import ReplayTarget

        path = spec.partition(":")[2].strip()
        if not path:
            raise TargetSpecError(f"--gateway {spec!r} names no recording: {SPEC_HELP}")
        return ReplayTarget(Path(path))
    if spec.startswith("docker:"):
        image = spec.partition(":")[2].strip()
        if not image:
            raise TargetSpecError(f"--gateway {spec!r} names no image: {SPEC_HELP}")
        # Imported here: docker-py is loaded only when a container is asked for.
        from .container_target import ContainerTarget

        return ContainerTarget(image, docker_host=docker_host)
    host, sep, port_text = spec.rpartition(":")
    if not sep or not host:
        raise TargetSpecError(f"--gateway {spec!r} is not a target: {SPEC_HELP}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise TargetSpecError(f"--gateway {spec!r}: port {port_text!r} is not in 1..65535: {SPEC_HELP}")
    return ExternalTarget(host.strip("[]"), int(port_text))


__all__ = [
    "SPEC_HELP", "TARGET_CONTAINER", "TARGET_EXTERNAL", "TARGET_MOCK", "BaseTarget", "Endpoint", "ExternalTarget",
    "GatewayTarget", "MockTarget", "TargetSpecError", "TargetUnsupported", "parse_target",
]
