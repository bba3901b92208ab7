"""`ibgw doctor`: the diagnostic ladder a person runs when trading stops.

Why it judges only from the wire and the host's socket table: it must give
the same answer against a real Gateway as against the mock, so it never asks
the mock's control endpoint anything. Several faults look identical on the
wire (a silent handshake, an API gone red after a disconnect, zombie
saturation: all accept TCP and never answer), so instead of guessing the
doctor gathers the evidence that separates them (the CLOSE_WAIT count on the
port, whether a fresh client id helps, whether the port refuses) and reports
which causes remain possible, most likely first.

The ladder, in order; a rung that cannot run after an earlier failure is
"skip" with the reason:

    port reachable -> version reply -> nextValidId -> managedAccounts ->
    IB connectivity -> startup sync ends -> client id in use -> CLOSE_WAIT sockets ->
    paper or live account

Each cause it names is a row of the one table (causes.py) with its public
source; judge.py holds the rules probe shares, so both commands agree.

Read-only: the raw client refuses order messages. Every wait is bounded:
against a silent Gateway the whole run takes about 2x the timeout (two
handshake attempts), never more than about 3x.

The package, one job per module (none imports another in a cycle):

    vocabulary  verdicts, rung names, cause titles and fixes, the Rung record
    host        the host name, resolved (bounded) before any TCP
    attempt     one raw-client handshake, classified
    sockets     the host's socket table for the port (CLOSE_WAIT, forwarders)
    sync        the startup sync's end messages
    evidence    what a rung records about an attempt
    state       the handshake rungs' shared state
    version     version-reply rungs, one function per failed outcome
    client_id   client-id / nextValidId / managedAccounts rungs, one per outcome
    handshake   the port rung and the outcome -> rung-function tables
    rungs       the rungs after a ready handshake, one function each
    diagnosis   rung verdicts -> causes (rows of causes.py)
    ladder      run_doctor: the rung order and the DoctorResult

Importers keep using `harness.scenarios.doctor`: the names below are re-exported.
"""

from __future__ import annotations

from ...core.constants import LIVE_PORTS as LIVE_PORTS
from ...core.constants import PAPER_PREFIXES as PAPER_PREFIXES
from .attempt import PROBE_ID_RANGE as PROBE_ID_RANGE
from .attempt import Attempt as Attempt
from .attempt import fresh_client_id as fresh_client_id
from .diagnosis import silent_family as silent_family
from .host import FIX_HOST_NAME as FIX_HOST_NAME
from .host import RESOLVE_TIMEOUT_S as RESOLVE_TIMEOUT_S
from .host import HostProblem as HostProblem
from .host import diagnose_host as diagnose_host
from .host import host_port_in_host as host_port_in_host
from .ladder import DoctorResult as DoctorResult
from .ladder import run_doctor as run_doctor
from .rungs import installed_client_floors as installed_client_floors
from .sockets import SocketSurvey as SocketSurvey
from .sockets import survey_sockets as survey_sockets
from .sync import check_sync as check_sync
from .vocabulary import CAUSE_API_NOT_READY as CAUSE_API_NOT_READY
from .vocabulary import CAUSE_CLIENT_CAP as CAUSE_CLIENT_CAP
from .vocabulary import CAUSE_CLOSED_AFTER_START as CAUSE_CLOSED_AFTER_START
from .vocabulary import CAUSE_CONNECTIVITY_LOST as CAUSE_CONNECTIVITY_LOST
from .vocabulary import CAUSE_DOWN as CAUSE_DOWN
from .vocabulary import CAUSE_FORWARDER as CAUSE_FORWARDER
from .vocabulary import CAUSE_ID_STUCK as CAUSE_ID_STUCK
from .vocabulary import CAUSE_LIVE as CAUSE_LIVE
from .vocabulary import CAUSE_LIVE_PORT as CAUSE_LIVE_PORT
from .vocabulary import CAUSE_LOGIN_INCOMPLETE as CAUSE_LOGIN_INCOMPLETE
from .vocabulary import CAUSE_NON_TWS as CAUSE_NON_TWS
from .vocabulary import CAUSE_NOT_LOGGED_IN as CAUSE_NOT_LOGGED_IN
from .vocabulary import CAUSE_RED as CAUSE_RED
from .vocabulary import CAUSE_SYNC as CAUSE_SYNC
from .vocabulary import CAUSE_TRANSIENT as CAUSE_TRANSIENT
from .vocabulary import CAUSE_UNREACHABLE as CAUSE_UNREACHABLE
from .vocabulary import CAUSE_VERSION_RANGE as CAUSE_VERSION_RANGE
from .vocabulary import CAUSE_WEDGE as CAUSE_WEDGE
from .vocabulary import CAUSE_ZOMBIE as CAUSE_ZOMBIE
from .vocabulary import CAUSE_ZOMBIES_PRESENT as CAUSE_ZOMBIES_PRESENT
from .vocabulary import CLOSE_WAIT_THRESHOLD as CLOSE_WAIT_THRESHOLD
from .vocabulary import FAIL as FAIL
from .vocabulary import FIX_API_NOT_READY as FIX_API_NOT_READY
from .vocabulary import FIX_CHURN as FIX_CHURN
from .vocabulary import FIX_DOWN as FIX_DOWN
from .vocabulary import FIX_FORWARDER as FIX_FORWARDER
from .vocabulary import FIX_ID as FIX_ID
from .vocabulary import FIX_LIVE as FIX_LIVE
from .vocabulary import FIX_LIVE_PORT as FIX_LIVE_PORT
from .vocabulary import FIX_LOGIN as FIX_LOGIN
from .vocabulary import FIX_REMOTE_SOCKETS as FIX_REMOTE_SOCKETS
from .vocabulary import FIX_SILENT as FIX_SILENT
from .vocabulary import FIX_SYNC as FIX_SYNC
from .vocabulary import FIX_UNREACHABLE as FIX_UNREACHABLE
from .vocabulary import FIX_ZOMBIE as FIX_ZOMBIE
from .vocabulary import FORWARDERS as FORWARDERS
from .vocabulary import MAX_SOCKET_ROWS as MAX_SOCKET_ROWS
from .vocabulary import OK as OK
from .vocabulary import RUNG_ACCOUNT_KIND as RUNG_ACCOUNT_KIND
from .vocabulary import RUNG_ACCOUNTS as RUNG_ACCOUNTS
from .vocabulary import RUNG_CLIENT_ID as RUNG_CLIENT_ID
from .vocabulary import RUNG_CLOSE_WAIT as RUNG_CLOSE_WAIT
from .vocabulary import RUNG_CONNECTIVITY as RUNG_CONNECTIVITY
from .vocabulary import RUNG_NEXT_ID as RUNG_NEXT_ID
from .vocabulary import RUNG_PORT as RUNG_PORT
from .vocabulary import RUNG_SYNC as RUNG_SYNC
from .vocabulary import RUNG_VERSION as RUNG_VERSION
from .vocabulary import RUNGS as RUNGS
from .vocabulary import SILENT_FAMILY as SILENT_FAMILY
from .vocabulary import SKIP as SKIP
from .vocabulary import VERDICTS as VERDICTS
from .vocabulary import WARN as WARN
from .vocabulary import Rung as Rung

__all__ = [
    "CAUSE_API_NOT_READY", "CAUSE_DOWN", "CAUSE_FORWARDER", "CAUSE_ID_STUCK", "CAUSE_LIVE", "CAUSE_LOGIN_INCOMPLETE",
    "CAUSE_CONNECTIVITY_LOST", "CAUSE_NON_TWS", "CAUSE_NOT_LOGGED_IN", "CAUSE_RED", "CAUSE_SYNC", "CAUSE_VERSION_RANGE",
    "CAUSE_ZOMBIE", "RUNG_CONNECTIVITY", "CLOSE_WAIT_THRESHOLD", "DoctorResult", "Rung",
    "RUNGS", "VERDICTS", "HostProblem", "diagnose_host", "host_port_in_host", "run_doctor", "silent_family",
    "survey_sockets",
]
