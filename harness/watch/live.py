"""A `rich` live view of the watch, for a terminal (JSON Lines stay the record).

Why separate from the loop: a sidecar logs to a pipe, where a redrawing
table is noise; the CLI picks this view only when stdout is a terminal and
prints one line per probe otherwise.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

STYLE = {"healthy": "green", "starting": "yellow", "logged_out": "yellow", "wedged": "bold red",
         "unusable": "red"}


def render(record: dict[str, Any], target: str) -> Table:
    table = Table(title=f"ibgw watch {target}", show_header=False, expand=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    state = record.get("state", "?")
    table.add_row("state", f"[{STYLE.get(state, 'white')}]{state}[/]")
    table.add_row("cause", record.get("title") or "-")
    table.add_row("detail", record.get("detail") or "-")
    phases = ", ".join(f"{k} {v:.1f} ms" for k, v in (record.get("phase_ms") or {}).items())
    table.add_row("handshake", phases or "-")
    sockets = record.get("sockets") or {}
    table.add_row("sockets", f"CLOSE_WAIT {sockets.get('close_wait', '?')}, listener Recv-Q "
                  f"{sockets.get('accept_backlog', '?')}, unread {sockets.get('unread_sockets', '?')}")
    table.add_row("decision", record.get("decision") or "-")
    table.add_row("restarts", str(record.get("restarts", 0)))
    table.add_row("last probe", record.get("ts", "-"))
    return table


class LiveView:
    def __init__(self, target: str, console: Console | None = None) -> None:
        self.target = target
        self.live = Live(Table(title=f"ibgw watch {target}: first probe..."), console=console,
                         refresh_per_second=2, transient=False)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def update(self, record: dict[str, Any]) -> None:
        self.live.update(render(record, self.target))


__all__ = ["LiveView", "render"]
