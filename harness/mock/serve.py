"""`python3 -m harness.mock.serve`: the mock Gateway as a container's main
process, standard library only.

Why not `ibgw mock serve`: that needs click and the installed package; a
Gateway image carries only python3 and the `harness.core`, `harness.protocol`
and `harness.mock` packages. Configured the way container images are, from the
environment (read through harness/core/config.py, the one table), with argv overrides:

    IBGW_MOCK_HOST (127.0.0.1)  IBGW_MOCK_PORT (4002)  IBGW_PROFILE (default)
    IBGW_ACCOUNTS (DU...,DU...)  IBGW_FAULTS (';'-separated, e.g. "latency=50;max-clients=4")
    IBGW_CONTROL_PORT (unset: no control endpoint)
    IBGW_HANDSHAKE_TIMEOUT (seconds from accept to startApi; 30, 0 = none)

Stops cleanly on SIGTERM (docker stop) and SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from ..core.config import env
from ..core.log_setup import setup_logging
from ..core.notices import banner
from ..core.signals import on_stop_signals
from .control import ControlServer
from .faults import FaultError
from .gateway import DEFAULT_HANDSHAKE_TIMEOUT, MockGateway
from .gctune import tune_for_serving
from .profiles import UnknownProfileError, get_profile

log = logging.getLogger("harness.mock")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m harness.mock.serve", description="the mock IB Gateway")
    parser.add_argument("--host", default=env("IBGW_MOCK_HOST"))
    parser.add_argument("--port", type=int, default=int(env("IBGW_MOCK_PORT")))
    parser.add_argument("--strict", action="store_true", default=env("IBGW_MOCK_STRICT") == "1",
                        help="every request the mock does not model is logged as a FAILURE")
    parser.add_argument("--profile", default=env("IBGW_PROFILE"))
    parser.add_argument("--accounts", default=env("IBGW_ACCOUNTS"))
    parser.add_argument("--fault", action="append", default=[f for f in env("IBGW_FAULTS").split(";") if f])
    parser.add_argument("--control-port", type=int, default=int(env("IBGW_CONTROL_PORT") or 0) or None)
    parser.add_argument("--handshake-timeout", type=float,
                        default=float(env("IBGW_HANDSHAKE_TIMEOUT") or DEFAULT_HANDSHAKE_TIMEOUT))
    return parser


async def serve(args: argparse.Namespace) -> int:
    accounts = [a.strip() for a in args.accounts.split(",") if a.strip()] or None
    gateway = MockGateway(args.host, args.port, profile=get_profile(args.profile), accounts=accounts,
                          faults=args.fault, handshake_timeout=args.handshake_timeout or None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    on_stop_signals(loop, lambda _signum: stop.set())
    gateway.strict = args.strict  # read by the request desk (requests_market.py)
    await gateway.start()
    control = None
    if args.control_port:
        control = await ControlServer(gateway, args.host, args.control_port).start()
    tune_for_serving()  # a long-running server's GC settings (gctune.py says why)
    profile = gateway.profile
    faults = ", ".join(gateway.faults.describe()) or "none"
    banner(f"mock Gateway listening on {args.host}:{gateway.port} (profile {profile.name}, build {profile.build}, "
           f"server version <= {profile.max_server_version}, faults: {faults})")
    await stop.wait()
    log.info("stopping")
    if control is not None:
        await control.stop()
    await gateway.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(logging.INFO, stream=sys.stdout, if_unconfigured=True)
    try:
        return asyncio.run(serve(args))
    except (UnknownProfileError, FaultError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
