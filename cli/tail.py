"""``chatbuddy tail``: follow what happens on a server, live."""

from __future__ import annotations

import asyncio

import click
from rich.console import Console

from chatbuddy.backoff import Backoff
from chatbuddy.client.admin import AdminClient
from chatbuddy.client.target import Target
from chatbuddy.errors import Disconnected, ServerUnreachable, TokenMissing

from . import aio
from .render import json_line
from .tail_printer import TailPrinter
from .target import identifier, target_options


@click.command()
@target_options
@click.option("--session", "session_id", callback=identifier, help="Follow only this session.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event, per line.")
@click.option(
    "--tool-args",
    is_flag=True,
    help="Show the arguments of the assistant's tool calls (they may hold what customers "
    "typed: e-mail addresses, postcodes).",
)
def tail(target: Target, session_id: str | None, as_json: bool, tool_args: bool) -> None:
    """Follow connections, messages, replies, tool calls and errors as they happen.

    A streamed reply grows on its line as it streams. If the server goes away,
    tail says so and reconnects (with backoff) until Ctrl-C.

    \b
    Examples:
      chatbuddy tail
      chatbuddy tail --session web-1234
      chatbuddy tail --json | jq 'select(.type == "error")'
      chatbuddy tail --tool-args          # what the LLM assistant looked up, and with what
    """
    aio.run(
        _follow(AdminClient(target), target.url, session_id, as_json=as_json, tool_args=tool_args)
    )


async def _follow(
    client: AdminClient, url: str, session_id: str | None, *, as_json: bool, tool_args: bool
) -> None:
    notices = Console(stderr=True, highlight=False)
    printer = TailPrinter(Console(highlight=False), notices=notices)
    what = f"session {session_id}" if session_id else "all sessions"
    connected_once = False
    backoff = Backoff(first=0.5, cap=10.0)

    def opened() -> None:
        nonlocal connected_once
        connected_once = True
        backoff.reset()
        printer.notice(f"Following {what} on {url} (Ctrl-C to stop)", style="dim")

    while True:
        try:
            async for event in client.tail(session_id, on_open=opened, tool_arguments=tool_args):
                if as_json:
                    click.echo(json_line(event))
                else:
                    printer.event(event)
            problem = f"lost the connection to {url}"
        except ServerUnreachable:
            if not connected_once:
                raise
            problem = f"cannot reach {url}"
        except TokenMissing:
            if not connected_once:
                raise
            # A restarting server removes its token file and writes a new one.
            problem = f"waiting for {url} to come back"
        except Disconnected:
            problem = f"lost the connection to {url}"
        wait = backoff.delay()
        printer.notice(f"{problem}; reconnecting in {wait:.1f}s (Ctrl-C to stop)")
        await asyncio.sleep(wait)
