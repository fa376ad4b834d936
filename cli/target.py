"""Which server a command talks to, and with which admin token."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from chatbuddy import token_file
from chatbuddy.text import is_valid_id

from .errors import TokenMissing, Unauthorized

DEFAULT_URL = "http://127.0.0.1:8000"
# Hosts for which the admin token file of this machine applies.
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}  # noqa: S104


@dataclass(frozen=True)
class Target:
    """A server's base URL and the admin token given for it (if any)."""

    url: str
    token: str | None = None

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def is_local(self) -> bool:
        return (urlsplit(self.url).hostname or "") in LOCAL_HOSTS

    def http(self, path: str) -> str:
        return self.url + path

    def ws(self, path: str) -> str:
        return "ws" + self.url[len("http") :] + path

    def admin_token(self) -> str:
        """The token to send: --token / CHATBUDDY_ADMIN_TOKEN, else the local server's file.

        Read anew on each call, so a reconnect after a server restart picks up
        the new server's token.
        """
        if self.token:
            return self.token
        if self.is_local:
            token = token_file.read_token(self.port)
            if token:
                return token
            where = token_file.token_path(self.port)
            raise TokenMissing(
                f"no admin token for {self.url}: none found at {where}; "
                "pass --token or set CHATBUDDY_ADMIN_TOKEN"
            )
        raise Unauthorized(
            f"{self.url} is not on this machine: pass its admin token with --token "
            "or CHATBUDDY_ADMIN_TOKEN"
        )


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
    """Add --url and --token, and pass the command a ``target``."""

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
        "the file `chatbuddy serve` writes.",
    )
    @functools.wraps(command)
    def wrapper(*args: Any, url: str, token: str | None, **kwargs: Any) -> Any:
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
