"""The `ibgw` command line: `probe` for on-call, `mock` for the mock Gateway.

The click group lives in harness.cli.main; each subcommand in its own module.
"""
