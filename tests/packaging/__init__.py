"""Tests of installing the harness, its benchmark entry point and the mock as a compose service."""
