"""A container test run only as a subprocess by tests/test_container_target.py
(its name does not match test_*.py, so `pytest tests` never collects it).

It starts a container through the container target, prints its id, and,
with VICTIM_HOLD=S, waits up to S seconds to be killed: the parent SIGKILLs
or SIGTERMs it mid-way and checks what is left of its containers.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from harness.targets.container_target import ContainerTarget


@pytest.mark.docker
async def test_hold_a_container(docker_engine):
    target = ContainerTarget(os.environ.get("VICTIM_IMAGE", "ibgw-mock:10.45"), ready_timeout=30)
    await target.start()
    print(f"VICTIM-CONTAINER {target.container.id} PID {os.getpid()}", flush=True)
    hold = float(os.environ.get("VICTIM_HOLD", "0"))
    if hold:
        await asyncio.sleep(hold)  # waiting to be killed; bounded so an orphaned victim still ends
    await target.stop()
