"""Tests of `ibgw watch` (harness/watch), in process and against a container."""
