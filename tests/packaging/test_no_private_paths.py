"""Nothing a user receives points at the research notes this project was built from: they have
the public sources (issue threads, client source), never a `shared/` folder beside the checkout."""

from __future__ import annotations

from tests.support import ROOT
from tests.support.processes import run

PRIVATE = ("shared/reference", "shared/field-reports", "../shared")


def test_no_tracked_file_points_at_the_private_notes() -> None:
    listed = run(["git", "ls-files"])
    assert listed.returncode == 0, listed.stderr
    tracked = listed.stdout.split()
    hits = []
    for name in tracked:
        if name == "tests/packaging/test_no_private_paths.py":
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files (the screenshot) carry no paths
        hits += [f"{name}: {marker}" for marker in PRIVATE if marker in text]
    assert not hits, "cite the public source instead: " + "; ".join(hits)
