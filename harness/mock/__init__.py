"""The mock IB Gateway (standard library only, asyncio)."""

from .control import ControlServer
from .faults import SPECS as FAULT_SPECS
from .faults import FaultError, parse_fault
from .gateway import DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CLIENTS, MockGateway
from .model import Account, AccountModel, Holding
from .profiles import PROFILES, GatewayProfile, UnknownProfileError, get_profile
from .transcript import ConnectionRecord

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_CLIENTS", "FAULT_SPECS", "PROFILES", "ControlServer", "FaultError", "parse_fault", "Account", "AccountModel", "ConnectionRecord", "GatewayProfile",
    "Holding", "MockGateway", "UnknownProfileError", "get_profile",
]
