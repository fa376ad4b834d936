"""The --url and --token options every admin command shares, and id checks."""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from chatbuddy.client.target import DEFAULT_URL, Target
from chatbuddy.text import is_valid_id, operator_name

from .secrets import file_option, resolve


def parse_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"expected http://HOST:PORT or https://HOST, got {value!r}")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise click.BadParameter(f"bad port in {value!r}") from None
    return f"{parts.scheme}://{parts.netloc}"


F = TypeVar("F", bound=Callable[..., Any])


def target_options(command: F) -> F:
    """Add --url, --token and --token-file, and pass the command a ``target``."""

    @click.option(
        "--url",
        default=DEFAULT_URL,
        show_default=True,
        envvar="CHATBUDDY_URL",
        show_envvar=True,
        callback=parse_url,
        help="The server to talk to.",
    )
    @click.option(
        "--token",
        envvar="CHATBUDDY_ADMIN_TOKEN",
        show_envvar=True,
        help="Admin token. Not needed for a server on this machine: it is read from "
        "the file `chatbuddy serve` writes. Visible to other local users in `ps`: "
        "prefer --token-file or the environment variable.",
    )
    @file_option("--token-file", "CHATBUDDY_ADMIN_TOKEN_FILE", "the admin token")
    @functools.wraps(command)
    def wrapper(
        *args: Any, url: str, token: str | None, token_file: str | None, **kwargs: Any
    ) -> Any:
        token = resolve(token, token_file, option="--token", twin="--token-file")
        ctx = click.get_current_context()
        inherited = ctx.obj if isinstance(ctx.obj, Target) else None
        # `chatbuddy sessions --url X show ID`: the group's options reach the subcommand.
        if inherited is not None and ctx.get_parameter_source("url") == ParameterSource.DEFAULT:
            url = inherited.url
        target = Target(url, token or (inherited.token if inherited else None))
        ctx.obj = target
        return command(*args, target=target, **kwargs)

    return wrapper  # type: ignore[return-value]


def identifier(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a session or user id must look like one (the server's rule)."""
    if value is not None and not is_valid_id(value):
        raise click.BadParameter(f"{value!r} is not valid (1-128 of A-Z a-z 0-9 _ . : -)")
    return value


def operator_option(command: F) -> F:
    """Add ``--as NAME``: the operator's display name, shown to the customer."""
    return click.option(
        "--as",
        "operator",
        envvar="CHATBUDDY_OPERATOR",
        show_envvar=True,
        callback=_operator_name,
        help="Your name as the customer sees it, e.g. --as Anna. Default: your login name "
        "with this machine's server token; a token of the tokens file (--token) acts "
        "under its own name.",
    )(command)


def acting_name(target: Target, given: str | None) -> str | None:
    """The name to send: ``given``; else, with the local server's own token (none given),
    the login name; else None, for the server to use the token's own name."""
    if given is not None or target.token:
        return given
    try:
        return operator_name(getpass.getuser())
    except (KeyError, OSError, ValueError):  # no login name (a container's unnamed user)
        return "operator"


def _operator_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return operator_name(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
