"""Faults of a trading app's start-up path (harness/mock/requests_market.py):
broken data farms, HMDS pacing, a slow sec-def farm."""

from __future__ import annotations

from ..market import HMDS_PREFIX
from ..sources import FIELD_REPORTS_ONLY
from .base import Fault, FaultSpec, flag, ms
from .registry import register

HMDS_BROKEN = (2105, "HMDS data farm connection is broken:ushmds")
MARKET_DATA_BROKEN = (2103, "Market data farm connection is broken:usfarm")
HMDS_PACING = "Historical data request pacing violation"


@register
class HmdsFarmBroken(Fault):
    spec = FaultSpec("hmds-farm-broken", "", "start-up says 2105 'HMDS data farm connection is broken' "
                     "(IbcAlpha/IBC#251) and history requests get 162 (the 162 text: field reports only)",
                     flag("hmds-farm-broken"),
                     source="IbcAlpha/IBC#251 (2105 farm broken); the 162 text: field reports only")

    def farm_notice(self, code: int, text: str) -> tuple[int, str]:
        return HMDS_BROKEN if code in (2106, 2107) else (code, text)

    def history_refusal(self) -> tuple[int, str] | None:
        return 162, HMDS_PREFIX + HMDS_BROKEN[1]


@register
class HmdsPacing(Fault):
    spec = FaultSpec("hmds-pacing", "", "every reqHistoricalData gets error 162 'Historical data request pacing "
                     "violation' (IBKR's historical-data limits; 162 per the official message codes)",
                     flag("hmds-pacing"),
                     source="field reports only: the 162 pacing text per IBKR's historical-data limits page; "
                            "no capture")

    def history_refusal(self) -> tuple[int, str] | None:
        return 162, HMDS_PREFIX + HMDS_PACING


@register
class SlowContractDetails(Fault):
    spec = FaultSpec("slow-contract-details", "MS", "contract details (and their end) arrive MS after the request "
                     "(a slow sec-def farm; field reports only)", ms("slow-contract-details"),
                     source=FIELD_REPORTS_ONLY)

    def contract_details_delay(self) -> float:
        return float(self.value)


@register
class MarketDataFarmBroken(Fault):
    spec = FaultSpec("market-data-farm-broken", "", "start-up says 2103 'Market data farm connection is broken' "
                     "(IbcAlpha/IBC#251); snapshots end without prices, as IBKR documents a snapshot that cannot "
                     "complete, and streams send nothing", flag("market-data-farm-broken"),
                     source="IbcAlpha/IBC#251 (2103 farm broken)")

    def farm_notice(self, code: int, text: str) -> tuple[int, str]:
        return MARKET_DATA_BROKEN if code == 2104 else (code, text)

    def quotes_blocked(self) -> bool:
        return True
