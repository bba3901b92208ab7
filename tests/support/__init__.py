"""Helpers shared by the harness's own tests, imported as a package (tests.support.X),
never by bare name through sys.path.

ROOT is the repository: tests find it here rather than counting parents of their
own path, so a test file can live in any folder of tests/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
