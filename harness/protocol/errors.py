"""The single error type the codec raises.

Why one type: the mock must close a misbehaving connection with a logged
cause and keep serving the rest, and the probe must turn bad bytes into a
one-line diagnosis. Both only need to catch ProtocolError.
"""

from __future__ import annotations

from ..core.errors import HarnessError


class ProtocolError(HarnessError):
    """Bytes that do not follow the TWS API wire protocol."""

    def __init__(self, cause: str, hint: str = "") -> None:
        self.cause = cause
        self.hint = hint
        super().__init__(f"{cause} ({hint})" if hint else cause)
