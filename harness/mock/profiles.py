"""Gateway version profiles: what a given Gateway build looks like on the wire.

A profile is the set of observable facts that differ between builds: the
highest server version it negotiates, the connection-time zone text, the
order of the first two messages after startApi, and the farm notices. The
containers and matrix issue maps real image tags onto these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..core.errors import HarnessError
from ..protocol.era import DEFAULT_REPLY_MODEL
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
    # A regression fixture: faults (mock/faults/ syntax) MockGateway sets
    # at start because a public report ties that symptom to this build, and
    # the report it comes from. The pinning report never reads these: it
    # must find the fault from the evidence alone.
    default_faults: tuple[str, ...] = ()
    regression_source: str = ""
    # Past 200: how the build picks text-with-binary-id or protobuf per
    # message (protocol/era.py REPLY_MODELS: a named assumption, switchable).
    reply_model: str = DEFAULT_REPLY_MODEL
    # Where max_server_version comes from: the API release table
    # (gateway-failure-modes.md, MAX_CLIENT_VER by release) or an interpolation.
    version_source: str = ""

    def with_max(self, max_server_version: int) -> GatewayProfile:
        return replace(self, max_server_version=max_server_version)


PROFILES: dict[str, GatewayProfile] = {
    p.name: p
    for p in (
        # Not a real build: a real 10.30.1 negotiates 187 (the 10.30 profile).
        # 178 is what ib_async <= 2.0.1 logs against modern Gateways (its own
        # maximum, ib-api-reloaded/ib_async#143). Named for what it is, with no
        # regression fixture, so healthy default runs never carry the label of
        # a build the pinning rejects.
        GatewayProfile("default", f"mock-{DEFAULT_MOCK_MAX}", DEFAULT_MOCK_MAX,
                       version_source="no real build: the text-era maximum ib_async <= 2.0.1 offers"),
        GatewayProfile("10.19", "10.19.2d", 176, time_zone="Central European Standard Time",
                       iana_zone="Europe/Berlin",
                       accounts_first=True),
        # ib-api-reloaded/ib_async#143: on 10.30.1 a connect with a unique
        # client id was closed right after startApi with no message, which
        # ib_async words "clientId 123 already in use?" (it says so for any
        # early close). Reproduced as that bare close, for 30 s after an API
        # client left (the report does not say what sets it off).
        GatewayProfile("10.30", "10.30.1", 187, default_faults=("closed-after-start-api=30",),
                       regression_source="ib-api-reloaded/ib_async#143 (10.30.1: closed right after startApi, "
                                         "no 326; ib_async reports 'clientId already in use?')"),
        # Builds that negotiate past 200 are capped at the last text version
        # until the protobuf era lands; the cap is the profile's, so the
        # evidence says which version was actually served.
        GatewayProfile("text-max", "10.37 (text-capped)", TEXT_PROTOCOL_MAX),
        # The builds users pin today (containers issue), at the server
        # version each negotiates with the modern official client (v100..226).
        GatewayProfile("10.37", "10.37.1q", 203, version_source="API 10.37.02 MAX_CLIENT_VER=203"),
        # 10.40/10.41 are not in the release table: between 10.37.02 (203) and
        # 10.43.02 (219). ASSUMPTION: 10.40 = 213 (the first build with
        # protobuf start-up: rust-ibapi, live-tested, floors at 213), 10.41 = 216.
        GatewayProfile("10.40", "10.40.1c", 213, version_source="interpolated (203 @10.37 .. 219 @10.43)"),
        # gnzsnz/ib-gateway-docker#336, 10.41.1d: the Gateway's API thread
        # wedges; connections are accepted and never answered, and CLOSE_WAIT
        # sockets owned by the Gateway pile up, even for clients that
        # disconnect cleanly (nautechsystems/nautilus_trader#4796 on 10.41.1c:
        # the listener stops accept()ing instead). The reports do not say what
        # sets it off; the fixture wedges after two API sessions so every
        # matrix cell (handshake, account sync, then the zombie runs) meets it.
        GatewayProfile("10.41", "10.41.1d", 216, default_faults=("api-wedge=no-read,2",),
                       version_source="interpolated (203 @10.37 .. 219 @10.43)",
                       regression_source="gnzsnz/ib-gateway-docker#336 (API wedged on 10.41.1d: accepted, never "
                                         "answered, CLOSE_WAIT piles up)"),
        GatewayProfile("10.45", "10.45.1j", 223, version_source="API 10.45.01 MAX_CLIENT_VER=223"),
        GatewayProfile("10.50", "10.50.1d", 226, version_source="API 10.50 (ibapi-stable 10.50.2) MAX_CLIENT_VER=226"),
        GatewayProfile("legacy-157", "981 (legacy)", 157, time_zone="EST", iana_zone="EST",
                       accounts_first=True),
    )
}


class UnknownProfileError(HarnessError, ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown Gateway profile {name!r}; valid: {', '.join(sorted(PROFILES))}")


def get_profile(name: str) -> GatewayProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfileError(name) from None
