"""Tests of the `ibgw` commands as subprocesses (harness/cli): bad paths, probe, doctor, soak input."""
