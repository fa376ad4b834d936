"""CLI errors: one line for the user, a distinct exit code, never a traceback."""

from __future__ import annotations

import click

#: Exit codes (click itself uses 1 for ClickException and 2 for usage errors).
EXIT_CONFIG = 3


class ConfigError(click.ClickException):
    """Settings that cannot work: bad values, a port in use."""

    exit_code = EXIT_CONFIG
