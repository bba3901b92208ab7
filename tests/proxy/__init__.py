"""Tests of the fault proxy, the safety guards and record/replay (harness/proxy, safety, recording)."""
