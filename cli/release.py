"""``chatbuddy release``: give a conversation back to the assistant, for scripts."""

from __future__ import annotations

import click
from rich.console import Console

from chatbuddy.client.admin import AdminClient
from chatbuddy.client.target import Target

from . import aio
from .render import json_line, safe
from .target import acting_name, identifier, operator_option, target_options


@click.command()
@target_options
@click.argument("session_id", metavar="SESSION", callback=identifier)
@operator_option
@click.option("--force", is_flag=True, help="Release it whoever holds it (needs an admin token).")
@click.option("--json", "as_json", is_flag=True, help="Print the released hold as JSON.")
def release(
    target: Target, session_id: str, operator: str | None, force: bool, as_json: bool
) -> None:
    """Give SESSION back to the assistant; the customer is told you left.

    Exit code 7 if another operator holds it (an administrator can take it from them with --force).

    \b
    Examples:
      chatbuddy release web-1234
      chatbuddy release web-1234 --force     # whoever holds it
    """
    name = acting_name(target, operator)
    document = aio.run(AdminClient(target).release(session_id, name, force=force))
    released = document["released"]
    if as_json:
        click.echo(json_line(document))
        return
    out = Console(highlight=False)
    if released is None:
        out.print(safe(f"nobody held {session_id}; the assistant answers it"))
    else:
        out.print(
            safe(f"released {session_id} (held by {released['operator']}); the assistant answers")
        )
