"""What a run leaves behind, found and cleaned whatever ended the run.

Why: a pytest run stopped by SIGINT or SIGTERM tears its fixtures down and
every process it started goes with them; a run stopped by SIGKILL (an OOM
kill, a CI job killed at its deadline) runs no teardown at all, and an
`ibgw mock serve` it had started keeps listening on its port for ever.
So every process the harness starts for a run registers itself in a run
directory (default reports/.run/, env IBGW_RUN_DIR) together with its
owner (the pytest process, env IBGW_RUN_OWNER); the next run's start-up
sweep stops any registered process whose owner is gone, and deletes
temporary files a killed writer left (`*.tmp` next to the evidence).

A process is identified by pid AND creation time, so a recycled pid is
never signalled. Standard library plus psutil (already a dependency).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

from .core.config import env
from .core.files import TEMP_SUFFIX, atomic_write_text
from .core.signals import sigterm_as_interrupt

log = logging.getLogger("harness.runstate")

RUN_DIR_ENV = "IBGW_RUN_DIR"
OWNER_ENV = "IBGW_RUN_OWNER"
DEFAULT_RUN_DIR = Path("reports/.run")
STOP_TIMEOUT = 3.0


def _identity(proc: psutil.Process) -> str:
    return f"{proc.pid}:{proc.create_time():.3f}"


def _alive(identity: str | None) -> bool:
    """True when the process `pid:create_time` still runs (not a recycled pid)."""
    if not identity:
        return False
    try:
        pid, created = identity.split(":", 1)
        proc = psutil.Process(int(pid))
        return abs(proc.create_time() - float(created)) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE
    except (ValueError, psutil.Error):
        return False


def run_dir() -> Path:
    return Path(env(RUN_DIR_ENV) or DEFAULT_RUN_DIR)


def claim_run(directory: Path | None = None) -> str:
    """Called by the pytest process at start: children it spawns inherit
    the run directory and this process as their owner. Returns the owner id."""
    owner = _identity(psutil.Process())
    os.environ[RUN_DIR_ENV] = str((directory or run_dir()).resolve())
    os.environ[OWNER_ENV] = owner
    return owner


def register(kind: str, **details: Any) -> Path | None:
    """Called by a harness-started process about itself (e.g. `ibgw mock
    serve` once listening). Does nothing outside a harness run (no owner)."""
    owner = env(OWNER_ENV)
    if not owner or not env(RUN_DIR_ENV):
        return None
    directory = run_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        me = psutil.Process()
        path = directory / f"{kind}-{me.pid}.json"
        atomic_write_text(path, json.dumps({"kind": kind, "process": _identity(me), "owner": owner,
                                            "cmdline": me.cmdline()[:6], **details}))
        return path
    except OSError as exc:  # never stop a server for its bookkeeping
        log.warning("could not register %s in %s: %s", kind, directory, exc)
        return None


def unregister(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep(directory: Path | None = None, temp_dirs: Iterable[Path] = ()) -> list[str]:
    """Stop registered processes whose owner is gone; drop their pid files;
    delete stale temporary files in temp_dirs. Returns what was done."""
    done: list[str] = []
    directory = directory or run_dir()
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entry = {}
        if entry and _alive(entry.get("owner")):
            continue  # another run, still going: not ours to touch
        ident = entry.get("process")
        if _alive(ident):
            pid = int(str(ident).split(":")[0])
            _stop(pid)
            done.append(f"stopped orphaned {entry.get('kind', 'process')} pid {pid} "
                        f"(port {entry.get('port', '?')}, its run's pytest is gone)")
        unregister(path)
        done.append(f"removed {path.name}")
    for temp_dir in temp_dirs:
        for tmp in temp_dir.glob(f".*{TEMP_SUFFIX}") if temp_dir.is_dir() else []:
            if not _writer_alive(tmp):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                done.append(f"removed stale {tmp}")
    for line in done:
        log.warning("start-up sweep: %s", line)
    return done


def _writer_alive(tmp: Path) -> bool:
    """`.name.json.<pid>.tmp`: is the pid that writes it still running?"""
    try:
        return psutil.pid_exists(int(tmp.name[: -len(TEMP_SUFFIX)].rsplit(".", 1)[1]))
    except (ValueError, IndexError):
        return False


def _stop(pid: int) -> None:
    """SIGTERM (a mock serve stops cleanly on it), then SIGKILL."""
    try:
        proc = psutil.Process(pid)
        proc.terminate()
        proc.wait(STOP_TIMEOUT)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.Error):
            proc.kill()
            proc.wait(STOP_TIMEOUT)
    except psutil.Error:
        pass


__all__ = ["DEFAULT_RUN_DIR", "OWNER_ENV", "RUN_DIR_ENV", "atomic_write_text", "claim_run", "register",
           "run_dir", "sigterm_as_interrupt", "sweep", "unregister"]
