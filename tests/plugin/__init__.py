"""Tests of the pytest plugin (harness/pytest_plugin): inert until used, options, live runs, interrupts."""
