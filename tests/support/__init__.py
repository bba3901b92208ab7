"""Helpers shared by the harness's own tests, imported as a package (tests.support.X)."""
