"""The handshake rungs' shared state for one doctor run.

Why its own module: the version and client-id rung families and the dispatcher all read and write
it; kept apart, none of them imports another in a cycle."""

from __future__ import annotations

from dataclasses import dataclass

from .attempt import Attempt, fresh_client_id, try_handshake
from .sockets import SocketSurvey
from .vocabulary import Rung


@dataclass
class Ladder:
    """The handshake rungs' shared state: what one doctor run found so far
    (its rungs, its causes, its attempts) and where it looks. Each rung
    function in version.py and client_id.py fills it for one outcome of the first handshake."""

    rungs: dict[str, Rung]
    diagnosis: list[str]
    attempts: list[Attempt]
    survey: SocketSurvey
    host: str
    port: int
    timeout: float
    threshold: int
    client_range: tuple[int, int] | None = None

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    async def fresh_attempt(self, first: Attempt) -> Attempt:
        """A second handshake with a fresh client id: does the id matter?"""
        second = await try_handshake(self.host, self.port, fresh_client_id(first.client_id), self.timeout,
                                self.client_range)
        self.attempts.append(second)
        return second
