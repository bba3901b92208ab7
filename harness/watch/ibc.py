"""A client for IBC's command server (IbcAlpha/IBC: CommandServer.java,
CommandDispatcher.java, CommandChannel.java).

The protocol, as IBC implements it: TCP to CommandServerPort (0, the
default, means no server; gnzsnz/ib-gateway-docker's config.ini.tmpl ships
0), accepted from the same host or a ControlFrom address; one command per
line (case-insensitive); optional `INFO ...` lines (SuppressInfoMessages=no)
and a prompt (CommandPrompt) without a newline; the answer is a line
`OK <info>` or `ERROR <info>`. RESTART answers `OK Restart in progress` and
closes the channel; on the Gateway IBC then sets the auto-restart time to
the next minute or two, so the Gateway goes down within about 2 minutes.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from ..core.errors import HarnessError

REPLY = re.compile(r"\b(OK|ERROR)\b ?(.*)")


class CommandServerError(HarnessError, RuntimeError):
    """The command server could not be reached or answered nothing usable; one line."""


@dataclass(frozen=True)
class CommandReply:
    ok: bool
    text: str  # the whole answer line, prompt stripped


async def send_command(host: str, port: int, command: str, *, timeout: float = 10.0) -> CommandReply:
    """Send one command, return IBC's OK/ERROR line; close as a clean client."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(command.strip().encode("ascii") + b"\n")
                await writer.drain()
                while line := await reader.readline():
                    match = REPLY.search(line.decode("ascii", "replace"))
                    if match:  # skips INFO lines; a prompt before the reply is stripped
                        return CommandReply(match.group(1) == "OK", match.group(0).strip())
                raise CommandServerError(f"IBC command server {host}:{port} closed without an OK/ERROR reply "
                                         f"to {command}")
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass
    except TimeoutError:
        raise CommandServerError(f"IBC command server {host}:{port} did not answer {command} within "
                                 f"{timeout:g} s") from None
    except OSError as exc:
        raise CommandServerError(f"IBC command server {host}:{port}: {exc.strerror or exc}; hint: IBC's "
                                 "CommandServerPort must be set (gnzsnz's default config leaves it 0) and "
                                 "this host allowed (same host or ControlFrom)") from None


__all__ = ["CommandReply", "CommandServerError", "send_command"]
