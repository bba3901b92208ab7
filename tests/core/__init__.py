"""Tests of the leaf layer (harness/core) and configuration (harness/config.py)."""
