"""A container test run only as a subprocess by tests/targets/test_container_target.py
(its name does not match test_*.py, so `pytest tests` never collects it).

It starts a container through the container target, prints its id, and,
with VICTIM_HOLD=S, waits up to S seconds to be killed: the parent SIGKILLs,
SIGTERMs or Ctrl-Cs (SIGINT to the process group) it mid-way and checks what
is left of its containers. The hold sits inside try/finally, as a real
container test's does: its clean-up then runs after the signal handler has
already removed the container (VICTIM_CLEANUP_RAISES=1: that clean-up
raises, hiding the KeyboardInterrupt). A test after it shows whether an interrupt
ended the session or was swallowed.
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
    try:
        print(f"VICTIM-CONTAINER {target.container.id} PID {os.getpid()} PORT {target.port}", flush=True)
        hold = float(os.environ.get("VICTIM_HOLD", "0"))
        if hold:
            await asyncio.sleep(hold)  # waiting to be killed; bounded so an orphaned victim still ends
    finally:
        await target.stop()
        if os.environ.get("VICTIM_CLEANUP_RAISES"):  # a clean-up that fails and hides the KeyboardInterrupt
            raise RuntimeError("the test's own clean-up failed")


def test_after_the_held_one():
    """Runs only when the session went on after the held test."""
    print("VICTIM-SESSION-WENT-ON", flush=True)
