"""CLI errors: one line for the user, a distinct exit code, never a traceback."""

from __future__ import annotations

import click

from chatbuddy.errors import AccessRefused, ClientFailure, Conflict, NotFound, ServerUnreachable

#: Exit codes (click itself uses 1 for ClickException and 2 for usage errors).
EXIT_CONFIG = 3
EXIT_UNREACHABLE = 4
EXIT_UNAUTHORIZED = 5
EXIT_NOT_FOUND = 6
EXIT_HELD = 7


class ConfigError(click.ClickException):
    """Settings that cannot work: bad values, a port in use."""

    exit_code = EXIT_CONFIG


class Unreachable(click.ClickException):
    """Nothing answers at the URL."""

    exit_code = EXIT_UNREACHABLE


class Unauthorized(click.ClickException):
    """The server refused the admin token or the session token (or there was none)."""

    exit_code = EXIT_UNAUTHORIZED


class Missing(click.ClickException):
    """The server has no such thing (an unknown session)."""

    exit_code = EXIT_NOT_FOUND


class Held(click.ClickException):
    """Another operator holds the conversation."""

    exit_code = EXIT_HELD


def click_error(failure: ClientFailure) -> click.ClickException:
    """The failure as click prints it: ``Error: MESSAGE`` on stderr, with its exit code."""
    if isinstance(failure, ServerUnreachable):
        return Unreachable(failure.message)
    if isinstance(failure, AccessRefused):
        return Unauthorized(failure.message)
    if isinstance(failure, NotFound):
        return Missing(failure.message)
    if isinstance(failure, Conflict):
        return Held(failure.message)
    return click.ClickException(failure.message)
