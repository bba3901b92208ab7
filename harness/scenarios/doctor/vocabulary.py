"""The ladder's words: verdicts, rung names (in ladder order), the cause titles and fixes doctor
can name (rows of the one table, causes.py), and the Rung record every rung function writes.

Why one module: every other doctor module speaks these names, so they sit at the bottom of the
package's imports and none of them imports another doctor module."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..causes import CAUSES

# ---------------------------------------------------------------- vocabulary

OK, FAIL, WARN, SKIP = "ok", "fail", "warn", "skip"
VERDICTS = (OK, FAIL, WARN, SKIP)

RUNG_PORT = "port reachable"
RUNG_VERSION = "version reply"
RUNG_NEXT_ID = "nextValidId"
RUNG_ACCOUNTS = "managedAccounts"
RUNG_CONNECTIVITY = "IB connectivity"
RUNG_SYNC = "startup sync ends"
RUNG_CLIENT_ID = "client id in use"
RUNG_CLOSE_WAIT = "CLOSE_WAIT sockets"
RUNG_ACCOUNT_KIND = "paper or live account"
RUNGS = (RUNG_PORT, RUNG_VERSION, RUNG_NEXT_ID, RUNG_ACCOUNTS, RUNG_CONNECTIVITY, RUNG_SYNC, RUNG_CLIENT_ID,
         RUNG_CLOSE_WAIT, RUNG_ACCOUNT_KIND)

# The causes doctor can name: titles from the one table (causes.py), which
# also holds what each means, its fix and its public source. `diagnosis` is
# a list of these titles (most likely first), sometimes with a detail
# appended after ": "; DoctorResult.causes carries the rows themselves.
CAUSE_DOWN = CAUSES["down"].title
CAUSE_UNREACHABLE = CAUSES["unreachable"].title
CAUSE_FORWARDER = CAUSES["forwarder"].title
CAUSE_CLIENT_CAP = CAUSES["client_cap"].title
CAUSE_NOT_LOGGED_IN = CAUSES["not_logged_in"].title
CAUSE_RED = CAUSES["red"].title
CAUSE_WEDGE = CAUSES["wedge"].title
CAUSE_ZOMBIE = CAUSE_WEDGE  # CLOSE_WAIT with a silent API: the wedge's public signature
CAUSE_CLOSED_AFTER_START = CAUSES["closed_after_start"].title
CAUSE_ID_STUCK = CAUSES["id_stuck"].title
CAUSE_API_NOT_READY = CAUSES["api_not_ready"].title
CAUSE_LOGIN_INCOMPLETE = CAUSES["login_incomplete"].title
CAUSE_SYNC = CAUSES["sync"].title
CAUSE_TRANSIENT = CAUSES["transient"].title
CAUSE_ZOMBIES_PRESENT = CAUSES["zombies_present"].title
CAUSE_LIVE = CAUSES["live"].title
CAUSE_LIVE_PORT = CAUSES["live_port"].title
CAUSE_VERSION_RANGE = CAUSES["version_range"].title
CAUSE_NON_TWS = CAUSES["non_tws"].title
CAUSE_CONNECTIVITY_LOST = CAUSES["connectivity_lost"].title

SILENT_FAMILY = (CAUSE_NOT_LOGGED_IN, CAUSE_RED, CAUSE_ZOMBIE)

CLOSE_WAIT_THRESHOLD = 3  # at or above: zombie saturation is the leading verdict
# Processes that listen in front of a Gateway: when one owns the port, the
# Gateway's own sockets (and its zombies) are elsewhere (a container's
# network namespace, the far end of a tunnel).
FORWARDERS = {"socat", "docker-proxy", "com.docker.backend", "vpnkit", "vpnkit-bridge", "rootlessport",
              "slirp4netns", "gvproxy", "ssh", "sshd", "kubectl", "limactl"}
MAX_SOCKET_ROWS = 10  # socket rows kept as evidence

# ---------------------------------------------------------------- remediations

FIX_DOWN = CAUSES["down"].fix
FIX_UNREACHABLE = CAUSES["unreachable"].fix
FIX_FORWARDER = CAUSES["forwarder"].fix
FIX_SILENT = CAUSES["not_logged_in"].fix
FIX_ZOMBIE = CAUSES["wedge"].fix
FIX_CHURN = CAUSES["zombies_present"].fix
FIX_ID = CAUSES["id_stuck"].fix
FIX_API_NOT_READY = CAUSES["api_not_ready"].fix
FIX_LOGIN = CAUSES["login_incomplete"].fix
FIX_SYNC = CAUSES["sync"].fix
FIX_LIVE = CAUSES["live"].fix
FIX_LIVE_PORT = CAUSES["live_port"].fix
FIX_REMOTE_SOCKETS = ("run doctor on the Gateway's host (or read /proc/net/tcp6 inside its container) to count "
                      "CLOSE_WAIT sockets")


@dataclass
class Rung:
    name: str
    verdict: str  # ok | fail | warn | skip
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: str = ""
    summary: str = ""  # one line for humans: what was seen (or why skipped)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- small helpers


def skip_after(rungs: dict[str, Rung], reason: str, *names: str) -> None:
    for name in names:
        rungs.setdefault(name, Rung(name, SKIP, {}, "", f"not reached: {reason}"))
