"""Tests of scenarios and their verdicts (harness/scenarios): doctor, causes, judge, soak."""
