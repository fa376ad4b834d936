"""``chatbuddy say``: one message to a customer as an operator, for scripts."""

from __future__ import annotations

import click
from rich.console import Console

from chatbuddy.client.admin import AdminClient
from chatbuddy.client.target import Target
from chatbuddy.text import operator_text

from . import aio
from .render import json_line, safe
from .target import acting_name, identifier, operator_option, target_options


@click.command()
@target_options
@click.argument("session_id", metavar="SESSION", callback=identifier)
@click.argument("text")
@operator_option
@click.option("--json", "as_json", is_flag=True, help="Print the stored message as JSON.")
def say(target: Target, session_id: str, text: str, operator: str | None, as_json: bool) -> None:
    """Say TEXT to the customer of SESSION as an operator.

    Takes the conversation over if you do not hold it yet: the assistant is then
    silent until `chatbuddy release`, or until the server's --operator-grace
    (2 minutes by default) after your last message. Exit code 7 if another
    operator holds it.

    \b
    Examples:
      chatbuddy say web-1234 "Hello, Anna here. Let me check your order."
      chatbuddy say web-1234 "Done!" --as Anna --json
    """
    try:
        content = operator_text(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="TEXT") from None
    name = acting_name(target, operator)
    document = aio.run(AdminClient(target).say(session_id, name, content))
    message = document["message"]
    if as_json:
        click.echo(json_line(message))
        return
    line = safe(f"#{message['id']} {operator} → {session_id}: ", "dim")
    line.append_text(safe(message["content"]))
    Console(highlight=False).print(line, soft_wrap=True)
