"""The ``chatbuddy`` command group."""

from __future__ import annotations

import os

import click

from chatbuddy import __version__

from .bench import bench
from .release import release
from .say import say
from .send import send
from .serve import serve
from .sessions import sessions
from .shop import shop
from .stats import stats
from .tail import tail
from .takeover import takeover


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
)
@click.version_option(__version__, prog_name="chatbuddy")
@click.option(
    "--no-color",
    is_flag=True,
    help="No colours in the output (as the NO_COLOR variable does).",
)
@click.pass_context
def cli(ctx: click.Context, no_color: bool) -> None:
    """ChatBuddy: a real-time chat server for a web shop's assistant bot.

    \b
    Start a server, then watch and poke it from another terminal:
      chatbuddy serve                 # http://127.0.0.1:8000/
      chatbuddy tail                  # live events
      chatbuddy stats                 # who is connected
      chatbuddy send "Szia!"          # talk to it
      chatbuddy takeover web-1234     # talk to a customer yourself
      chatbuddy bench -c 50           # load-test it
      chatbuddy shop check shop.json  # validate your own shop file

    The admin commands find a local server's admin token by themselves; for a
    remote server pass --url and --token (or CHATBUDDY_URL, CHATBUDDY_ADMIN_TOKEN).
    Commands that print data take --json. Shell completion: docs/admin.md.
    """
    if no_color:
        # Every rich Console made from here on reads it (https://no-color.org).
        os.environ["NO_COLOR"] = "1"
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for command in (serve, tail, stats, send, sessions, takeover, say, release, bench, shop):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli()
