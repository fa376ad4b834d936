"""Secrets given to the CLI: from a file or stdin rather than the command line.

A command line is visible to every local user (``ps``, ``/proc/PID/cmdline``);
a file only you can read, an environment variable (readable only by you) or
stdin are not. Every option that takes a secret has a ``--…-file`` twin that
reads it from PATH, or from stdin when PATH is ``-``.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: Longest secret read (a token is 43 characters; this is plenty and bounds a mistake).
#: The longest secret read (a signed identity with many claims runs to a few KiB).
MAX_SECRET = 16384


def file_option(name: str, envvar: str, what: str) -> Callable[[F], F]:
    """The ``--…-file PATH`` twin of a secret option (``-`` reads stdin)."""
    return click.option(
        name,
        envvar=envvar,
        show_envvar=True,
        metavar="PATH|-",
        help=f"Read {what} from PATH (one line; `-`: from stdin).",
    )


def resolve(given: str | None, source: str | None, *, option: str, twin: str) -> str | None:
    """The secret: ``given`` on the command line, or read from ``source``; not both."""
    if given is not None and source is not None:
        raise click.UsageError(f"give {option} or {twin}, not both")
    if source is None:
        return None if given is None else _one_word(given, option)
    return read_secret(source, twin)


def _one_word(secret: str, option: str) -> str:
    """``secret`` without the blanks around it (a variable set from a file may end in a
    line break); one that is empty or has blanks or control characters inside is
    refused here, not sent in a header the HTTP client would refuse."""
    secret = secret.strip()
    odd = next((c for c in secret if c.isspace() or not c.isprintable() or not c.isascii()), None)
    if not secret or odd is not None:
        found = "nothing" if odd is None else f"{odd!r} at {secret.index(odd) + 1}"
        raise click.BadParameter(
            "expected one word of ASCII letters, digits and punctuation, without spaces, "
            f"line breaks or control characters (found {found})",
            param_hint=option,
        )
    return secret


def read_secret(source: str, option: str) -> str:
    """The first line of ``source`` (a path, or ``-`` for stdin), stripped."""
    if source == "-":
        text = sys.stdin.readline(MAX_SECRET)
        where = "stdin"
    else:
        path = Path(source)
        try:
            with path.open(encoding="utf-8") as handle:
                text = handle.readline(MAX_SECRET)
                mode = os.fstat(handle.fileno()).st_mode
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(
                f"cannot read {source}: {_reason(exc)}", param_hint=option
            ) from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            click.echo(
                f"Warning: {source} is readable by other users; `chmod 600 {source}`.",
                err=True,
            )
        where = source
    if not text.strip():
        raise click.BadParameter(
            f"{where} holds no secret (its first line is empty)", param_hint=option
        )
    if len(text) >= MAX_SECRET and not text.endswith("\n"):
        raise click.BadParameter(
            f"the first line of {where} is longer than {MAX_SECRET} characters", param_hint=option
        )
    return _one_word(text, option)


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return "not UTF-8 text"
