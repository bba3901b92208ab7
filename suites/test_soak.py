"""The soak suite: `make soak DURATION=3600 GATEWAY=mock` (marker `soak`,
excluded from a plain run). Thin glue over harness/scenarios/soak.py.

Environment (set by `make soak`): IBGW_SOAK_DURATION (seconds, default
3600), IBGW_SOAK_SCHEDULE (KIND@AT[:S],...; 'none' for no faults; default
one of each fault the target allows), IBGW_SOAK_CLIENTS (comma list,
default: --client if given, else raw,ib_async), IBGW_SOAK_NO_RECONNECT=1, IBGW_SOAK_TIME_SCALE
(multiplies the schedule's fault lengths, e.g. 0.05 plays a 75 s auto-restart in 3.75 s: a short
soak that still proves recovery from realistic faults). The Gateway comes from
--gateway as for every suite; evidence goes to reports/soak/<UTC time>/
(soak.jsonl while it runs, evidence.json, timeline.png) and, as for every
scenario, to reports/evidence and allure.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.config import env as config_env
from harness.core.record import Evidence
from harness.evidence.soak_outputs import SoakProgress, write_outputs
from harness.live.session import LIVE_REFUSED_EXIT, LiveRunRefused
from harness.live.soak_run import DEFAULT_OUT, run_soak_against, soak_out_dir
from harness.pytest_plugin import HarnessConfig
from harness.safety.accounts import ALLOW_FLAG
from harness.scenarios.soak import SoakConfig

DURATION = float(config_env("IBGW_SOAK_DURATION"))
TIME_SCALE = float(config_env("IBGW_SOAK_TIME_SCALE"))
# Start-up, the final CLOSE_WAIT settle and the plot on top of the run itself.
TIMEOUT = int(DURATION + 600)


@pytest.mark.soak
@pytest.mark.timeout(TIMEOUT)
async def test_soak(harness_config: HarnessConfig, record_evidence: Callable[[Evidence], Path],
                    pytestconfig: pytest.Config) -> None:
    # IBGW_SOAK_CLIENTS, else an explicit --client, else raw and ib_async (ibapi is optional for a soak).
    explicit = pytestconfig.getoption("--client") and harness_config.clients
    clients = tuple(c for c in config_env("IBGW_SOAK_CLIENTS").split(",") if c) or explicit \
        or ("raw", "ib_async")
    if not TIME_SCALE > 0:
        pytest.fail(f"IBGW_SOAK_TIME_SCALE={TIME_SCALE:g}: a time scale must be above 0 (e.g. 0.05)", pytrace=False)
    config = SoakConfig(duration=DURATION, clients=clients, time_scale=TIME_SCALE,
                        reconnect=config_env("IBGW_SOAK_NO_RECONNECT") not in ("1", "true", "yes"))
    out_dir = soak_out_dir(DEFAULT_OUT)
    print(f"\nsoak: {DURATION:g} s against {harness_config.gateway_spec}; evidence in {out_dir}", file=sys.stderr)
    with SoakProgress(DURATION) as progress:
        try:
            evidence = await run_soak_against(harness_config.gateway_spec, config, out_dir,
                                              schedule_text=config_env("IBGW_SOAK_SCHEDULE") or None,
                                              progress=progress, allow_live_account=pytestconfig.getoption(ALLOW_FLAG),
                                              report=lambda text: print(f"soak: {text}", file=sys.stderr))
        except LiveRunRefused as exc:  # a non-paper account: stop the whole run, as every live run does
            pytest.exit(str(exc), returncode=LIVE_REFUSED_EXIT)
    record_evidence(evidence)
    for path in write_outputs(evidence, out_dir):
        print(f"wrote {path}", file=sys.stderr)
    assert evidence.ok, f"{evidence.cause} (hint: {evidence.hint})"
