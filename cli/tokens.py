"""``chatbuddy tokens``: admin tokens with roles, kept as hashes in a tokens file.

The file is what ``chatbuddy serve --admin-tokens-file`` reads (again whenever
it changes, so a revoked token stops working at once). These commands work on
the file directly; no server needs to run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from chatbuddy.admin_tokens import (
    Role,
    add_token,
    read_entries,
    readable_by_others,
    revoke_token,
)
from chatbuddy.errors import ConfigurationError

from .errors import ConfigError, Missing
from .result_tables import tokens_table

ROLE_HELP = (
    "stats: the stats endpoint and metrics (monitoring); viewer: plus sessions, "
    "transcripts and the tail; operator: plus taking conversations over and writing; "
    "admin: plus deleting and exporting."
)


F = TypeVar("F", bound=Callable[..., Any])


def file_option(command: F) -> F:
    """The --file option every tokens command takes."""
    return click.option(
        "--file",
        "path",
        required=True,
        envvar="CHATBUDDY_ADMIN_TOKENS_FILE",
        show_envvar=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The tokens file (what `chatbuddy serve --admin-tokens-file` reads).",
    )(command)


@click.group()
def tokens() -> None:
    """Admin tokens with roles: stats < viewer < operator < admin.

    \b
    Examples:
      chatbuddy tokens add grafana --role stats --file /etc/chatbuddy/tokens > grafana.token
      chatbuddy tokens list --file /etc/chatbuddy/tokens
      chatbuddy tokens revoke grafana --file /etc/chatbuddy/tokens
      chatbuddy serve --admin-tokens-file /etc/chatbuddy/tokens
    """


@tokens.command()
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice([role.label for role in Role]),
    help=ROLE_HELP,
)
@file_option
def add(name: str, role: str, path: Path) -> None:
    """Make a token named NAME with a role; print it once (only its hash is kept).

    The token goes to stdout alone, so it can go straight to a file or a secret
    store; the file is made (readable only by you) if it does not exist.

    \b
    Examples:
      chatbuddy tokens add grafana --role stats --file tokens > grafana.token
      chatbuddy tokens add anna --role operator --file tokens | pass insert -m chatbuddy/anna
    """
    try:
        token = add_token(path, name, Role.parse(role))
    except ConfigurationError as error:
        raise ConfigError(str(error)) from None
    click.echo(token)
    click.echo(
        f"Made the token {name!r} with the role {role} in {path}. This is the only time it "
        "is shown; a running server accepts it at once.",
        err=True,
    )


@tokens.command(name="list")
@file_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per token (for scripts).")
def list_tokens(path: Path, as_json: bool) -> None:
    """List the tokens of the file: names, roles and when they were made (never the tokens).

    \b
    Examples:
      chatbuddy tokens list --file tokens
      chatbuddy tokens list --file tokens --json | jq -r 'select(.role == "admin") | .name'
    """
    try:
        entries = read_entries(path)
    except ConfigurationError as error:
        raise ConfigError(str(error)) from None
    if readable_by_others(path):
        click.echo(f"Warning: {path} is readable by other users; `chmod 600 {path}`.", err=True)
    if as_json:
        for entry in entries:
            click.echo(
                json.dumps({"name": entry.name, "role": entry.role.label, "created": entry.created})
            )
        return
    if not entries:
        click.echo(f"No tokens in {path}.")
        return
    Console().print(tokens_table(entries))


@tokens.command()
@click.argument("name")
@file_option
def revoke(name: str, path: Path) -> None:
    """Remove the token named NAME; a running server refuses it from its next request
    on (and closes a tail it has open within seconds).

    \b
    Examples:
      chatbuddy tokens revoke grafana --file tokens
    """
    try:
        removed = revoke_token(path, name)
    except ConfigurationError as error:
        raise ConfigError(str(error)) from None
    if not removed:
        raise Missing(f"no token named {name!r} in {path}")
    click.echo(f"Revoked the token {name!r}.")
