"""Tests of client adapters (harness/clients) with the real clients, the isolated worker, optional extras."""
