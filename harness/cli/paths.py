"""Output paths checked before a command starts its work.

Why a module: `ibgw record` keeps its capture in memory until it stops,
`ibgw proxy` appends a transcript while it runs, `ibgw pin` writes its
report after printing it. A bad path found only at the end loses the work
or blames the wrong thing (a transcript path reported as a busy port). The
only reliable check is the operation itself, so these create what the
command will create (parent directories, the file, opened for appending)
and turn a failure into one usage error (exit 2) naming the option, the
cause, and a hint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click


def _in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of `path` when it is not a directory."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _refuse(path: Path, option: str, exc: OSError, *, inside: bool = False) -> click.BadParameter:
    """The usage error for a failed write to `path` (`inside`: a file in the directory `path`)."""
    blocker = _in_the_way(path / "x" if inside else path)
    what = f"cannot write files in {path}" if inside else f"cannot write {path}"
    if blocker is not None:
        return click.BadParameter(f"{what}: {blocker} is a file, not a directory; "
                                  f"hint: choose another {option} (or move {blocker} away)", param_hint=f"'{option}'")
    return click.BadParameter(f"{what}: {exc.strerror or exc}; hint: choose a {option} on a writable "
                              "file system where you have write permission", param_hint=f"'{option}'")


def check_writable_file(path: Path, option: str, *, probe: Path | None = None, create_parents: bool = True) -> None:
    """Raise click.BadParameter unless `path` can be written.

    Creates missing parent directories (unless `create_parents` is False:
    then a missing directory is the error, named) and opens `probe` (default: `path`;
    `ibgw record` passes the temporary sibling it writes through) for
    appending, which never changes an existing file; a probe file created
    here is removed again."""
    if path.is_dir():
        raise click.BadParameter(f"{path} is a directory; hint: name a file, e.g. {path / 'out.jsonl'}",
                                 param_hint=f"'{option}'")
    if not create_parents and _in_the_way(path) is None and not path.parent.is_dir():
        raise click.BadParameter(f"cannot write {path}: the directory {path.parent} does not exist; hint: create "
                                 f"it first (mkdir -p {path.parent}) or choose another {option}",
                                 param_hint=f"'{option}'")
    target = probe or path
    existed = target.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8"):
            pass
        if not existed and target != path:
            target.unlink()
    except OSError as exc:
        raise _refuse(path, option, exc) from None


def writable_dir_problem(path: Path, option: str) -> str | None:
    """None when files can be created in directory `path` (created, with its
    parents, if missing), else the one-line cause and hint. A file is made
    and removed there, since permission bits alone say nothing on a
    read-only or pseudo file system, or to root. No click: the pytest
    plugin checks --evidence-dir with it too."""
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a directory; hint: choose another {option}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".ibgw-write-check-", dir=path)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return str(_refuse(path, option, exc, inside=True).message)
    return None


def check_writable_dir(path: Path, option: str) -> None:
    """Raise click.BadParameter unless files can be created in directory `path`."""
    problem = writable_dir_problem(path, option)
    if problem is not None:
        raise click.BadParameter(problem, param_hint=f"'{option}'")


__all__ = ["check_writable_dir", "check_writable_file", "writable_dir_problem"]
