"""``chatbuddy sessions``: the admin API's sessions, as tables and transcripts."""

from __future__ import annotations

import json

import click
from rich.console import Console

from chatbuddy.client.admin import AdminClient
from chatbuddy.client.target import Target

from . import aio
from .render import sessions_view, transcript_view, waiting_view
from .target import identifier, target_options


@click.group(invoke_without_command=True)
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print the raw document (for scripts).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option(
    "--waiting",
    is_flag=True,
    help="Only customers who asked for a person that nobody took yet, the one waiting "
    "longest first.",
)
@click.pass_context
def sessions(
    ctx: click.Context, target: Target, as_json: bool, limit: int, offset: int, waiting: bool
) -> None:
    """List sessions, most recently active first; `sessions show ID` shows one.

    \b
    Examples:
      chatbuddy sessions
      chatbuddy sessions --limit 10 --json
      chatbuddy sessions --waiting          # who waits for a person, longest first
      chatbuddy sessions show web-1234
    """
    if ctx.invoked_subcommand is not None:
        return
    if waiting:
        queue = aio.run(AdminClient(target).waiting(limit=limit))
        if as_json:
            click.echo(json.dumps(queue))
        else:
            Console().print(waiting_view(queue["waiting"]))
        return
    page = aio.run(AdminClient(target).sessions(offset=offset, limit=limit))
    if as_json:
        click.echo(json.dumps(page))
    else:
        Console().print(sessions_view(page))


@sessions.command()
@target_options
@click.argument("session_id", callback=identifier)
@click.option("--json", "as_json", is_flag=True, help="Print the raw document (for scripts).")
def show(target: Target, session_id: str, as_json: bool) -> None:
    """Show one session and its history as a transcript."""
    document = aio.run(AdminClient(target).session(session_id))
    if as_json:
        click.echo(json.dumps(document))
    else:
        Console(soft_wrap=True).print(transcript_view(document))
