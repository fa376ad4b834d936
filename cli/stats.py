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
from chatbuddy.errors import AccessRefused, ServerUnreachable, TokenMissing

from . import aio
from .session_views import stats_view
from .target import target_options


@click.command()
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print the raw stats document (for scripts).")
@click.option(
    "--watch", "-w", is_flag=True, help="Refresh until Ctrl-C, waiting through server restarts."
)
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
        click.echo(json.dumps(await client.stats()))  # no server at all: exit 4 at once
        notices = Console(stderr=True, highlight=False)  # stdout holds only the documents
        while watch:
            await asyncio.sleep(interval)
            try:
                click.echo(json.dumps(await client.stats()))
            except (ServerUnreachable, TokenMissing) as error:
                notices.print(Text(_retrying(client, error), style="bold red"))
        return
    console = Console()
    view = await _view(client)
    if not watch:
        console.print(view)
        return
    with Live(view, console=console, auto_refresh=False) as live:
        while True:
            await asyncio.sleep(interval)
            try:
                view = await _view(client)
            except (ServerUnreachable, TokenMissing) as error:
                view = Text(_retrying(client, error), style="bold red")
            live.update(view, refresh=True)


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


def _retrying(client: AdminClient, error: ServerUnreachable | TokenMissing) -> str:
    """Once it was seen, a server that is gone is restarting (until Ctrl-C says otherwise):
    its token file is missing until the new one writes it."""
    if isinstance(error, TokenMissing):
        return f"waiting for {client.target.url} to come back (retrying)"
    return f"{error.message} (retrying)"
