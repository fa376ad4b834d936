"""``chatbuddy stats``: who is connected, as tables."""

from __future__ import annotations

import asyncio
import json

import click
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from chatbuddy.client.admin import AdminClient
from chatbuddy.client.target import Target
from chatbuddy.errors import AccessRefused, ServerUnreachable

from . import aio
from .render import stats_view
from .target import target_options


@click.command()
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print the raw stats document (for scripts).")
@click.option("--watch", "-w", is_flag=True, help="Refresh in place until Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(0.2),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
def stats(target: Target, as_json: bool, watch: bool, interval: float) -> None:
    """Show connections, sessions, users and message totals of a server.

    \b
    Examples:
      chatbuddy stats                       # the server on this machine
      chatbuddy stats --watch               # refresh every second
      chatbuddy stats --json | jq .websocket_stats
      chatbuddy stats --url https://chat.example --token-file ~/.chatbuddy.token
    """
    aio.run(_stats(AdminClient(target), as_json=as_json, watch=watch, interval=interval))


async def _stats(client: AdminClient, *, as_json: bool, watch: bool, interval: float) -> None:
    if as_json:
        while True:
            click.echo(json.dumps(await client.stats()))
            if not watch:
                return
            await asyncio.sleep(interval)
    console = Console()
    if not watch:
        console.print(await _view(client))
        return
    with Live(console=console, auto_refresh=False) as live:
        while True:
            try:
                live.update(await _view(client), refresh=True)
            except ServerUnreachable as error:
                live.update(Text(f"{error.message} (retrying)", style="bold red"), refresh=True)
            await asyncio.sleep(interval)


async def _view(client: AdminClient) -> RenderableType:
    """The stats, and the latest sessions when the token's role may see them (a
    ``stats`` token, made for monitoring, may not)."""
    stats = await client.stats()
    try:
        sessions = await client.sessions(limit=20)
    except AccessRefused as refused:
        if refused.status != 403:
            raise
        sessions = None
    return stats_view(stats, sessions)
