"""The `ibgw` click group. Kept small: each subcommand lives in its own
module and is registered here, so adding one is one import and one line."""

from __future__ import annotations

import click

from .. import __version__
from ..core.redact import install_log_redaction
from .diff import diff
from .doctor import doctor
from .mock_serve import mock
from .pin import pin
from .probe import probe
from .proxy import proxy
from .record import record
from .soak import soak
from .watch import healthcheck, watch


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ibgw")
def main() -> None:
    """ibgw: integration harness for the IBKR TWS API as served by IB Gateway."""
    install_log_redaction()  # every log line a command prints is redacted (core/redact.py)


main.add_command(probe)
main.add_command(proxy)
main.add_command(mock)
main.add_command(doctor)
main.add_command(pin)
main.add_command(soak)
main.add_command(record)
main.add_command(diff)
main.add_command(watch)
main.add_command(healthcheck)

__all__ = ["main"]
