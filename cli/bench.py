"""``chatbuddy bench``: load-test a ChatBuddy deployment."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from chatbuddy.client.target import Target
from chatbuddy.errors import ServerUnreachable

from . import aio
from .loadgen import HandshakeRefused, LoadResult, LoadTarget, RateLimited, run_load
from .result_tables import result_table
from .target import target_options

#: serve's options that let one client send as fast as a benchmark does.
UNLIMITED = (
    "--rate-limit 0 --session-rate-limit 0 --ip-rate-limit 0 --frame-rate-limit 0 "
    "--new-sessions-per-minute 0"
)


@click.command()
@target_options
@click.option(
    "--connections",
    "-c",
    type=click.IntRange(1, 10_000),
    default=10,
    show_default=True,
    help="Concurrent connections, each a new session in a closed loop.",
)
@click.option(
    "--duration",
    "-d",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds to measure.",
)
@click.option(
    "--warmup",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Seconds to run before measuring.",
)
@click.option("--message", default="hello", show_default=True, help="The chat text to send.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def bench(
    target: Target,
    connections: int,
    duration: float,
    warmup: float,
    message: str,
    as_json: bool,
) -> None:
    """Measure replies per second and latency of a running server.

    Each connection sends a chat message, waits for the whole reply, and sends
    the next. A server's rate limits (per connection, session, address and frame)
    refuse that by default: bench stops at the first refusal and says so (exit
    code 1). To measure a server's capacity, start it with
    `--rate-limit 0 --session-rate-limit 0 --ip-rate-limit 0 --frame-rate-limit 0
    --new-sessions-per-minute 0` (each connection is a new session).

    \b
    Examples:
      chatbuddy bench                                  # the local server, 10 connections
      chatbuddy bench -c 50 -d 30 --url http://chat.internal:8000
    """
    load = LoadTarget(target.url, message=message)
    result = aio.run(_bench(load, target.url, connections, duration, warmup, quiet=as_json))
    if as_json:
        click.echo(json.dumps(result.as_dict()))
    if result.refused:
        raise click.ClickException(
            f"stopped: {target.url}'s rate limits refused the load ({result.refusal}), so "
            "the figures would measure the limits, not the server. To measure a server, "
            f"start it with `chatbuddy serve {UNLIMITED}` (never in production)."
        )
    if not as_json:
        Console().print(result_table(result, target.url))
    if result.replies == 0:
        raise click.ClickException("no replies were measured")


async def _bench(
    load: LoadTarget, url: str, connections: int, duration: float, warmup: float, *, quiet: bool
) -> LoadResult:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rate]:>9.0f} replies/s"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"{connections} connections", total=duration, rate=0.0)

        def advance(elapsed: float, replies: int) -> None:
            progress.update(task, completed=elapsed, rate=replies / max(elapsed, 1e-9))

        try:
            return await run_load(
                load,
                connections=connections,
                duration=duration,
                warmup=warmup,
                on_progress=advance,
            )
        except RateLimited:
            raise click.ClickException(
                f"stopped: {url} refused new connections (too many new sessions from this "
                f"address). To measure a server, start it with `chatbuddy serve {UNLIMITED}`, "
                "or use fewer --connections."
            ) from None
        except HandshakeRefused as error:
            raise click.ClickException(str(error)) from None
        except OSError:  # refused, reset, unknown host: nothing that speaks WebSocket
            raise ServerUnreachable(url) from None
