"""The `ibgw` click group. Kept small: each subcommand lives in its own
module and is listed here, so adding one is one line in COMMANDS.

Why lazy: every `ibgw` start used to import all ten subcommand modules
(doctor, scenarios, recording, targets, proxy...), about 0.3 s of CPU before
the command it runs did anything; the harness's own test suite starts
hundreds of `ibgw` children, and on-call runs `ibgw probe` on a loaded host.
Now `ibgw X` imports only X's module. `ibgw --help` still lists every
command with its help line, from the short help kept in COMMANDS
(tests/cli/test_cli_lazy.py fails when one drifts from its command).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from .. import __version__
from ..core.redact import install_log_redaction

# name -> (module in harness.cli, attribute, the help `ibgw --help` shows for it). The text is the
# command's short_help when it has one (shown as is), else its help's first paragraph, which
# format_commands shortens to the width exactly as click does.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "diff": ("diff", "diff", "Messages added, missing or reordered after startApi, field-count and value-shape "
             "changes per message type, and timing shifts, from recording A (before) to recording B (after)."),
    "doctor": ("doctor", "doctor", "Diagnose an IB Gateway / TWS API port: a ladder of checks, each with a "
               "verdict, its evidence and what to do about it."),
    "healthcheck": ("watch", "healthcheck", "One API-level health check: healthy (0), wedged (1), starting (3), "
                    "logged_out (4), unusable (5)."),
    "mock": ("mock_serve", "mock", "Serve the mock Gateway, or list its Gateway profiles."),
    "pin": ("pin", "pin", "Pick the newest Gateway version that passed every cell, from RESULTS (evidence "
            "directories or files; any number, one per Gateway install)."),
    "probe": ("probe", "probe", "Connect once, ping, and say which handshake phase stalls."),
    "proxy": ("proxy", "proxy", "Forward a Gateway port with injectable faults and a decoded transcript."),
    "record": ("record", "record", "Record every frame between clients and a Gateway, both directions, with "
               "timing."),
    "soak": ("soak", "soak", "Keep connections alive for DURATION under a fault schedule; measure outages, "
             "recoveries, resources."),
    "watch": ("watch", "watch", "Probe the Gateway's API on an interval; restart it through IBC's command server "
              "only for a confirmed wedge; never for a wrong port, a version mismatch, an untrusted address or a "
              "pending login/2FA (it says so)."),
}
# The commands whose text above is their own short_help (click shows it unshortened).
SHORT_HELP = frozenset({"mock", "probe"})


class LazyGroup(click.Group):
    """A click group whose subcommands are imported when first used (the
    lazy group pattern from click's documentation), with help lines for
    `--help` that need no import."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attr, _ = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
            assert isinstance(command, click.Command), (cmd_name, command)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own Group.format_commands, with the help of a command not yet imported from COMMANDS."""
        names = [name for name in self.list_commands(ctx)
                 if name not in self.commands or not self.commands[name].hidden]
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                rows.append((name, placeholder(name).get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def placeholder(name: str) -> click.Command:
    """A command with only the table's help for NAME: click shortens it as it would the real one."""
    text = COMMANDS[name][2]
    return click.Command(name, short_help=text) if name in SHORT_HELP else click.Command(name, help=text)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ibgw")
def main() -> None:
    """ibgw: integration harness for the IBKR TWS API as served by IB Gateway."""
    install_log_redaction()  # every log line a command prints is redacted (core/redact.py)


def load_all() -> dict[str, Any]:
    """Every subcommand, imported: for tests and tools that walk the whole command tree."""
    ctx = click.Context(main)
    return {name: main.get_command(ctx, name) for name in COMMANDS}


__all__ = ["COMMANDS", "SHORT_HELP", "LazyGroup", "load_all", "main", "placeholder"]
