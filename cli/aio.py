"""Running a command's coroutine: Ctrl-C ends it quietly, client failures become
one-line errors with their exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from chatbuddy.errors import ClientFailure

from .errors import click_error

T = TypeVar("T")

#: The conventional exit code after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine``; on Ctrl-C exit with 130 and no traceback."""
    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except ClientFailure as failure:
        raise click_error(failure) from None
