"""CLI errors: one line for the user, a distinct exit code, never a traceback."""

from __future__ import annotations

import click

#: Exit codes (click itself uses 1 for ClickException and 2 for usage errors).
EXIT_CONFIG = 3
EXIT_UNREACHABLE = 4
EXIT_UNAUTHORIZED = 5
EXIT_NOT_FOUND = 6


class ConfigError(click.ClickException):
    """Settings that cannot work: bad values, a port in use."""

    exit_code = EXIT_CONFIG


class ServerUnreachable(click.ClickException):
    """Nothing answers at the URL."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, url: str) -> None:
        super().__init__(f"cannot connect to {url} — is `chatbuddy serve` running?")


class Unauthorized(click.ClickException):
    """The server refused the admin token (or none was found)."""

    exit_code = EXIT_UNAUTHORIZED


class TokenMissing(Unauthorized):
    """No admin token was given and the local server's token file is not there (yet):
    the server is not running, or is restarting."""


class NotFound(click.ClickException):
    """The server has no such thing (an unknown session)."""

    exit_code = EXIT_NOT_FOUND
