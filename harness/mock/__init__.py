"""The mock IB Gateway (standard library only, asyncio)."""

from .gateway import DEFAULT_MAX_CLIENTS, MockGateway
from .model import Account, AccountModel, Holding
from .profiles import PROFILES, GatewayProfile, UnknownProfileError, get_profile
from .transcript import ConnectionRecord

__all__ = [
    "DEFAULT_MAX_CLIENTS", "PROFILES", "Account", "AccountModel", "ConnectionRecord", "GatewayProfile",
    "Holding", "MockGateway", "UnknownProfileError", "get_profile",
]
