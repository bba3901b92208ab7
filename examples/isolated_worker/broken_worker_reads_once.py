"""DELIBERATELY BROKEN copy of worker.py: answers `connect` before the API is ready.

Field report 003's worker read the account list once, right after its
connect call came back, and gave up when it was empty. This copy does the
same with ib_async: it starts the connect in the background (to keep its
command loop "responsive"), takes the Gateway's first answer (the version
reply) as "connected", and reads managedAccounts once. At that moment
startApi has only just been sent, so the list is always empty and the
worker reports "No managed accounts found" although the accounts are on
their way. The harness's suites must fail it; `ibgw doctor --client
examples.isolated_worker.broken:reads_accounts_once` must name it.

Do not copy this. worker.py shows the correct wait.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ib_async import IB
from worker import (  # run as a script: its folder is on sys.path
    RequestError,
    Worker,
    main,
)


class ReadsAccountsOnceWorker(Worker):
    async def cmd_connect(self, params: dict[str, Any]) -> dict[str, Any]:
        ib = self.ib = IB()
        answered: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()

        def on_first_answer(_data: bytes) -> None:
            if not answered.done():
                # THE BUG: "the Gateway answered, so we are connected": read the accounts once, now.
                answered.set_result(ib.managedAccounts())

        ib.client.conn.hasData += on_first_answer
        connecting = asyncio.ensure_future(ib.connectAsync(params["host"], int(params["port"]),
                                                           int(params["client_id"]),
                                                           timeout=float(params["timeout"]),
                                                           readonly=bool(params["readonly"])))
        await asyncio.wait({connecting, answered}, timeout=float(params["timeout"]),
                           return_when=asyncio.FIRST_COMPLETED)
        ib.client.conn.hasData -= on_first_answer
        accounts = answered.result() if answered.done() else []
        if not accounts:
            connecting.cancel()
            self._close(ib)
            self.ib = None
            raise RequestError("No managed accounts found", "managed_accounts")
        return {"connected": True, "accounts": accounts, "server_version": ib.client.serverVersion(),
                "next_valid_id": ib.client.getReqId(), "api_ready_s": 0.0}


if __name__ == "__main__":
    main(ReadsAccountsOnceWorker())
