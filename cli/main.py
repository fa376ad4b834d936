"""The ``chatbuddy`` command group."""

from __future__ import annotations

import click

from chatbuddy import __version__

from .serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chatbuddy")
def cli() -> None:
    """ChatBuddy: a real-time chat server for a web shop's assistant bot.

    Start with `chatbuddy serve`, then open the URL it prints.
    """


cli.add_command(serve)


def main() -> None:
    """Console-script entry point."""
    cli()
