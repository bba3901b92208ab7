"""The harness's own tests, grouped by the layer they test (tests/<layer>/); shared helpers in tests/support."""
