"""Gateway version profiles: what a given Gateway build looks like on the wire.

A profile is the set of observable facts that differ between builds: the
highest server version it negotiates, the connection-time zone text, the
order of the first two messages after startApi, and the farm notices. The
containers and matrix issue maps real image tags onto these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..protocol.versions import DEFAULT_MOCK_MAX, TEXT_PROTOCOL_MAX

FarmNotice = tuple[int, str]

DEFAULT_FARM_NOTICES: tuple[FarmNotice, ...] = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


@dataclass(frozen=True)
class GatewayProfile:
    name: str
    build: str  # the Gateway build this profile stands for, e.g. "10.30.1"
    max_server_version: int = DEFAULT_MOCK_MAX
    time_zone: str = "US/Eastern"  # the Java display name the Gateway prints
    iana_zone: str = "America/New_York"  # the same zone for computing local time
    accounts_first: bool = False  # older builds send managedAccounts before nextValidId
    farm_notices: tuple[FarmNotice, ...] = field(default=DEFAULT_FARM_NOTICES)

    def with_max(self, max_server_version: int) -> GatewayProfile:
        return replace(self, max_server_version=max_server_version)


PROFILES: dict[str, GatewayProfile] = {
    p.name: p
    for p in (
        GatewayProfile("default", "10.30.1", DEFAULT_MOCK_MAX),
        GatewayProfile("10.19", "10.19.2", 176, time_zone="Central European Standard Time",
                       iana_zone="Europe/Berlin",
                       accounts_first=True),
        GatewayProfile("10.30", "10.30.1", 178),
        # Builds that negotiate past 200 are capped at the last text version
        # until the protobuf era lands; the cap is the profile's, so the
        # evidence says which version was actually served.
        GatewayProfile("text-max", "10.37 (text-capped)", TEXT_PROTOCOL_MAX),
        GatewayProfile("legacy-157", "981 (legacy)", 157, time_zone="EST", iana_zone="EST",
                       accounts_first=True),
    )
}


class UnknownProfileError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown Gateway profile {name!r}; valid: {', '.join(sorted(PROFILES))}")


def get_profile(name: str) -> GatewayProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfileError(name) from None
