"""``chatbuddy sessions``: the admin API's sessions, as tables and transcripts;
exported, and erased on request."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from chatbuddy.client.admin import AdminClient
from chatbuddy.client.target import Target

from . import aio
from .session_views import (
    CSV_COLUMNS,
    csv_rows,
    erased_view,
    sessions_view,
    transcript_view,
    waiting_view,
)
from .target import identifier, target_options


@click.group(invoke_without_command=True)
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print the raw document (for scripts).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Every live session, a page of --limit at a time (with --json: one per line).",
)
@click.option(
    "--waiting",
    is_flag=True,
    help="Only customers who asked for a person that nobody took yet, the one waiting "
    "longest first.",
)
@click.pass_context
def sessions(
    ctx: click.Context,
    target: Target,
    as_json: bool,
    limit: int,
    offset: int,
    every: bool,
    waiting: bool,
) -> None:
    """List sessions, most recently active first; `sessions show ID` shows one.

    \b
    Examples:
      chatbuddy sessions
      chatbuddy sessions --limit 10 --json
      chatbuddy sessions --all --json > sessions.jsonl
      chatbuddy sessions --waiting          # who waits for a person, longest first
      chatbuddy sessions show web-1234
      chatbuddy sessions export --since 2024-01-01 -o transcripts.jsonl
      chatbuddy sessions delete --user anna
    """
    if ctx.invoked_subcommand is not None:
        return
    if waiting:
        queue = aio.run(AdminClient(target).waiting(limit=limit))
        if as_json:
            click.echo(json.dumps(queue))
        else:
            Console().print(waiting_view(queue["waiting"]))
        return
    client = AdminClient(target)
    if not every:
        page = aio.run(client.sessions(offset=offset, limit=limit))
        if as_json:
            click.echo(json.dumps(page))
        else:
            Console().print(sessions_view(page))
        return
    aio.run(_every_page(client, offset, limit, as_json))


async def _every_page(client: AdminClient, offset: int, limit: int, as_json: bool) -> None:
    """Print page after page until the end; one page is held at a time, here and on
    the server."""
    console = Console()
    while True:
        page = await client.sessions(offset=offset, limit=limit)
        if as_json:
            for session in page["sessions"]:
                click.echo(json.dumps(session))
        elif page["sessions"] or offset == 0:
            console.print(sessions_view(page))
        offset += len(page["sessions"])
        if not page["sessions"] or offset >= page["total"]:
            return


@sessions.command()
@target_options
@click.argument("session_id", callback=identifier)
@click.option("--json", "as_json", is_flag=True, help="Print the raw document (for scripts).")
def show(target: Target, session_id: str, as_json: bool) -> None:
    """Show one session and its history as a transcript."""
    document = aio.run(AdminClient(target).session(session_id))
    if as_json:
        click.echo(json.dumps(document))
    else:
        Console(soft_wrap=True).print(transcript_view(document))


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date like 2024-01-15, got {value!r}") from None
    return value


@sessions.command()
@target_options
@click.option("--since", metavar="DATE", callback=_date, help="Only sessions active since DATE.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one session with its messages per line; csv: one message per row.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE (made readable by you alone) instead of standard output.",
)
def export(target: Target, since: str | None, fmt: str, output: Path | None) -> None:
    """Export every kept transcript (live or not), streamed as it is read.

    For data-protection requests and backups: sessions arrive one page at a time,
    so an export of any size needs no more memory than one page. Text is written
    as the users typed it.

    \b
    Examples:
      chatbuddy sessions export -o transcripts.jsonl
      chatbuddy sessions export --since 2024-01-01 --format csv -o january.csv
    """
    notices = Console(stderr=True)
    with _opened(output) as stream:
        writer = csv.writer(stream) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(CSV_COLUMNS)
        with _progress(
            notices, show=notices.is_terminal and (output is not None or not sys.stdout.isatty())
        ) as tick:

            def on_session(document: dict[str, Any]) -> None:
                if writer is not None:
                    writer.writerows(csv_rows(document))
                else:
                    stream.write(json.dumps(document, ensure_ascii=False) + "\n")
                tick()

            count = aio.run(AdminClient(target).export(on_session, since=since))
    where = f" to {output}" if output is not None else ""
    notices.print(f"Exported {count} session{'' if count == 1 else 's'}{where}.", highlight=False)


@contextlib.contextmanager
def _opened(output: Path | None) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
        yield stream


@contextlib.contextmanager
def _progress(console: Console, *, show: bool) -> Iterator[Any]:
    """A counter of exported sessions, drawn only on a terminal."""
    if not show:
        yield lambda: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.completed} sessions exported"))
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("export", total=None)
        yield lambda: progress.advance(task)


@sessions.command()
@target_options
@click.argument("session_id", required=False, callback=identifier)
@click.option(
    "--user", "user_id", metavar="USER_ID", callback=identifier, help="Every session of this user."
)
@click.option(
    "--yes", is_flag=True, help="Do not ask (needed when standard input is not a terminal)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the raw document (for scripts).")
def delete(
    target: Target, session_id: str | None, user_id: str | None, yes: bool, as_json: bool
) -> None:
    """Erase a session, or every session of a user, for good; close their open tabs.

    For data-protection requests: the messages are erased where they are stored
    (for SQLite, from the file, its free pages and its WAL), the tabs are closed
    with close code 4003 (session deleted), and the audit log records it.

    \b
    Examples:
      chatbuddy sessions delete web-1234
      chatbuddy sessions delete --user anna --yes
    """
    if (session_id is None) == (user_id is None):
        raise click.UsageError("give a SESSION_ID or --user USER_ID (one of them)")
    what = f"session {session_id}" if session_id else f"every session of user {user_id}"
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"erasing {what} cannot be undone: pass --yes to confirm")
        click.confirm(f"Erase {what} for good?", abort=True, err=True)
    client = AdminClient(target)
    if session_id is not None:
        result = aio.run(client.erase_session(session_id))
    else:
        assert user_id is not None
        result = aio.run(client.erase_user(user_id))
    if as_json:
        click.echo(json.dumps(result))
    else:
        Console(highlight=False).print(erased_view(result, user_id=user_id))
