"""DELIBERATELY BROKEN copies of the isolated worker's adapter, kept so the
harness proves it catches them (tests/clients/test_isolated_worker.py runs the
suites against each and expects them to fail; `ibgw doctor --client` names
the client and the phase).

* ``reads_accounts_once``: the worker answers `connect` after reading the
  account list once, right after the version reply (field report 003).
* ``params_wrong_level``: the adapter puts the connect parameters at the top
  level of the request instead of under "params" (field report 004, bug #1);
  the worker refuses the request, so no connection ever reaches the Gateway.

Do not copy these; adapter.py and worker.py are the reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .adapter import IsolatedWorkerClient


class ReadsAccountsOnceClient(IsolatedWorkerClient):
    worker_script = Path(__file__).with_name("broken_worker_reads_once.py")
    label = "isolated_worker[broken: reads accounts once]"


class ParamsWrongLevelClient(IsolatedWorkerClient):
    label = "isolated_worker[broken: params at the wrong level]"

    def connect_request(self, host: str, port: int, client_id: int, timeout: float, readonly: bool) -> dict[str, Any]:
        # THE BUG: the parameters belong under "params".
        return {"command": "connect", "host": host, "port": port, "client_id": client_id, "timeout": timeout,
                "readonly": readonly}


def reads_accounts_once(**options: Any) -> ReadsAccountsOnceClient:
    return ReadsAccountsOnceClient(**options)


def params_wrong_level(**options: Any) -> ParamsWrongLevelClient:
    return ParamsWrongLevelClient(**options)
