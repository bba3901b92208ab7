"""`ibgw` imports only the subcommand it runs, and `ibgw --help` still lists
every command with the help line click would show.

Why: the lazy group (harness/cli/main.py) keeps each command's help in a
table so `--help` needs no import; this file fails when the table drifts
from a command, and when a plain `ibgw --help` or `ibgw mock ...` starts
importing the other commands again (about 0.3 s of CPU per `ibgw` start).
"""

from __future__ import annotations

import inspect
import sys

import click
import pytest

from harness.cli.main import COMMANDS, SHORT_HELP, load_all, placeholder
from tests.support.processes import run

SUBCOMMAND_MODULES = sorted({f"harness.cli.{module}" for module, _, _ in COMMANDS.values()})


def _own_text(command: click.Command) -> str:
    """The text the table must hold: the short_help, else the help's first paragraph on one line."""
    if command.short_help:
        return inspect.cleandoc(command.short_help)
    return " ".join((command.help or "").split("\n\n")[0].split())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_holds_each_commands_own_help(name: str) -> None:
    command = load_all()[name]
    assert command is not None and command.name == name
    assert COMMANDS[name][2] == _own_text(command)
    assert (name in SHORT_HELP) == bool(command.short_help)
    for limit in (30, 45, 60, 74):  # as click shortens it for any terminal width
        assert placeholder(name).get_short_help_str(limit) == command.get_short_help_str(limit), (name, limit)


def _imported_after(*argv: str) -> tuple[str, list[str]]:
    """`ibgw ARGV` in a fresh interpreter: its output and the subcommand modules it imported."""
    code = ("import sys\nfrom harness.cli.main import main\n"
            "try:\n    main(sys.argv[1:], prog_name='ibgw')\nexcept SystemExit:\n    pass\n"
            f"print('IMPORTED', *sorted(m for m in sys.modules if m in {SUBCOMMAND_MODULES!r}))")
    done = run([sys.executable, "-c", code, *argv], timeout=60)
    assert done.returncode == 0, done.stderr
    out, _, imported = done.stdout.rpartition("IMPORTED")
    return out, imported.split()


def test_help_lists_every_command_and_imports_none() -> None:
    out, imported = _imported_after("--help")
    assert imported == []
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == sorted(COMMANDS)


def test_a_command_imports_only_its_own_module() -> None:
    out, imported = _imported_after("mock", "profiles")
    assert imported == ["harness.cli.mock_serve"], imported
    assert "10.45" in out
