"""Tests of Gateway targets (harness/targets): containers, engines, the base target."""
