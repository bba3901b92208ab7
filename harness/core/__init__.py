"""The leaf layer: what every other layer shares, in the standard library only.

Why a leaf: the mock and the codec are stdlib-only, and the layers above
them (proxy, safety, recording, targets, clients, scenarios, evidence, cli)
need the same few things: redaction, the Evidence record, the error base
class, the constants that decide "live or paper", atomic writes, one bounded
poll, signal handling. Kept here they are defined once and importable from
anywhere without an upward import (import-linter checks it: pyproject.toml).

Modules: redact, record, errors, constants, files, wait, signals, net, config
(every environment variable, in one table), log_setup (the one logging setup).
Nothing here imports another harness package.
"""
