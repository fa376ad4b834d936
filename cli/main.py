"""The ``chatbuddy`` command group."""

from __future__ import annotations

import click

from chatbuddy import __version__

from .bench import bench
from .send import send
from .serve import serve
from .sessions import sessions
from .shop import shop
from .stats import stats
from .tail import tail
from .tokens import tokens


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chatbuddy")
def cli() -> None:
    """ChatBuddy: a real-time chat server for a web shop's assistant bot.

    \b
    Start a server, then watch and poke it from another terminal:
      chatbuddy serve                 # http://127.0.0.1:8000/
      chatbuddy tail                  # live events
      chatbuddy stats                 # who is connected
      chatbuddy send "Szia!"          # talk to it
      chatbuddy bench -c 50           # load-test it
      chatbuddy shop check shop.json  # validate your own shop file
      chatbuddy tokens add grafana --role stats --file tokens   # a monitoring token

    The admin commands find a local server's admin token by themselves; for a
    remote server pass --url and --token (or CHATBUDDY_URL, CHATBUDDY_ADMIN_TOKEN).
    """


for command in (serve, tail, stats, send, sessions, bench, shop, tokens):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli()
