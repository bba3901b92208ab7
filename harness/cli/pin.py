"""`ibgw pin RESULTS...`: which Gateway version to pin, from evidence files.

Why a command of its own: the decision merges results from several places
(the matrix, a desktop Gateway, a container run), and people run it by hand
after collecting them. The logic lives in harness/evidence/pinning.py; this
module only parses arguments, prints and writes the report.

Exit codes: 0 a version is recommended, 3 inconclusive (cells missing),
4 no version passed everything, 2 no usable results, an unwritable --out or
a --recording that is not a complete recording (all checked before the
decision is printed, so a bad argument never hides behind a good answer).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from ..evidence.pinning import (
    INCONCLUSIVE,
    RECOMMENDED,
    PinInputError,
    build_report,
    cite_wire_diffs,
    to_markdown,
    write_report,
)
from .paths import check_writable_dir

if TYPE_CHECKING:
    from ..recording.format import Recording

EXIT_RECOMMENDED, EXIT_BAD_INPUT, EXIT_INCONCLUSIVE, EXIT_NONE = 0, 2, 3, 4


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", default=Path("reports"), show_default=True, type=click.Path(path_type=Path),
              help="where pinning.md and pinning.json are written")
@click.option("--recording", "recordings", multiple=True, metavar="VERSION=FILE",
              help="a wire recording of a Gateway version (ibgw record); a rejected version with one is cited with "
                   "what changed on the wire against the recommended version's recording. Repeatable.")
def pin(results: tuple[Path, ...], out_dir: Path, recordings: tuple[str, ...]) -> None:
    """Pick the newest Gateway version that passed every cell, from RESULTS
    (evidence directories or files; any number, one per Gateway install)."""
    missing = [str(p) for p in results if not p.exists()]
    if missing:
        _bad_input(f"no such results path: {', '.join(missing)} (run the matrix first: make report)")
    # Options are usage errors (exit 2), checked before the decision is printed.
    loaded = _load_recordings(recordings)  # every file, not only the ones the decision happens to cite
    check_writable_dir(out_dir, "--out")
    try:
        report = build_report(list(results))
    except PinInputError as exc:
        _bad_input(str(exc))
    if loaded:
        report = cite_wire_diffs(report, _wire_diffs(report["recommended"], loaded))
    click.echo(to_markdown(report), nl=False)
    try:
        md, js = write_report(report, out_dir)
    except OSError as exc:  # checked up front; this is a disk filling up or a directory removed meanwhile
        _bad_input(f"cannot write the report to {out_dir}: {exc.strerror or exc} (the decision is printed above); "
                   "hint: check --out")
    click.echo(f"\nwritten: {md}  {js}")
    status = report["status"]
    raise SystemExit(EXIT_RECOMMENDED if status == RECOMMENDED else EXIT_INCONCLUSIVE if status == INCONCLUSIVE
                     else EXIT_NONE)


def _bad_input(message: str) -> NoReturn:
    """One line on stderr, exit 2: how a problem with the RESULTS ends (bad options are click usage errors)."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _load_recordings(specs: tuple[str, ...]) -> dict[str, Recording]:
    """VERSION=FILE -> the loaded recording, each one read and validated
    now: a file that is not a complete recording is a usage error whether
    or not the decision ends up citing it (it used to be read only when the
    recommended version had a recording, so a bad file could pass with exit 0)."""
    from ..recording import RecordingError, load

    out: dict[str, Recording] = {}
    for spec in specs:
        version, sep, file = spec.partition("=")
        if not sep or not version or not file:
            raise click.BadParameter(f"{spec!r}: expected VERSION=FILE, e.g. 10.41=rec-10.41.jsonl",
                                     param_hint="--recording")
        if version in out:
            raise click.BadParameter(f"{spec!r}: version {version} is given twice; hint: one recording per version",
                                     param_hint="--recording")
        try:
            out[version] = load(Path(file))
        except RecordingError as exc:
            raise click.BadParameter(f"{spec!r}: {exc}", param_hint="--recording") from None
    return out


def _wire_diffs(recommended: str | None, recordings: dict[str, Recording]) -> dict[str, list[str]]:
    """Readable changes from the recommended version's recording to each other one's."""
    if recommended is None or recommended not in recordings:
        return {}
    from ..recording.diff import diff_recordings

    base = recordings[recommended]
    return {version: [c.to_text() for c in diff_recordings(base, rec)]
            for version, rec in recordings.items() if version != recommended}
