"""`ibgw pin RESULTS...`: which Gateway version to pin, from evidence files.

Why a command of its own: the decision merges results from several places
(the matrix, a desktop Gateway, a container run), and people run it by hand
after collecting them. The logic lives in harness/evidence/pinning.py; this
module only parses arguments, prints and writes the report.

Exit codes: 0 a version is recommended, 3 inconclusive (cells missing),
4 no version passed everything, 2 no usable results.
"""

from __future__ import annotations

from pathlib import Path

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
        click.echo(f"error: no such results path: {', '.join(missing)} (run the matrix first: make report)", err=True)
        raise SystemExit(EXIT_BAD_INPUT)
    try:
        report = build_report(list(results))
    except PinInputError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    if recordings:
        try:
            report = cite_wire_diffs(report, _wire_diffs(report["recommended"], _parse_recordings(recordings)))
        except (ValueError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(EXIT_BAD_INPUT) from None
    click.echo(to_markdown(report), nl=False)
    md, js = write_report(report, out_dir)
    click.echo(f"\nwritten: {md}  {js}")
    status = report["status"]
    raise SystemExit(EXIT_RECOMMENDED if status == RECOMMENDED else EXIT_INCONCLUSIVE if status == INCONCLUSIVE
                     else EXIT_NONE)


def _parse_recordings(specs: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for spec in specs:
        version, sep, file = spec.partition("=")
        if not sep or not version or not file:
            raise ValueError(f"--recording {spec!r}: expected VERSION=FILE, e.g. 10.41=rec-10.41.jsonl")
        if not Path(file).is_file():
            raise ValueError(f"--recording {spec!r}: no such file {file}")
        out[version] = Path(file)
    return out


def _wire_diffs(recommended: str | None, files: dict[str, Path]) -> dict[str, list[str]]:
    """Readable changes from the recommended version's recording to each other one's."""
    if recommended is None or recommended not in files:
        return {}
    from ..recording.diff import diff_recordings
    from ..recording.format import load

    base = load(files[recommended])
    return {version: [c.to_text() for c in diff_recordings(base, load(path))]
            for version, path in files.items() if version != recommended}
