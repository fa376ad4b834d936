"""``chatbuddy serve``: run the chat server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.markup import escape

from chatbuddy import workers
from chatbuddy.errors import ConfigurationError
from chatbuddy.metrics.prometheus import process_gone, shared_folder
from chatbuddy.server import Server, bind, page_url
from chatbuddy.server import serve as run_server
from chatbuddy.settings import Settings
from chatbuddy.token_file import token_path

from .errors import ConfigError
from .options import settings_from, settings_options
from .render import storage_line
from .secrets import file_option, resolve


@click.command()
@settings_options
@file_option("--admin-token-file", "CHATBUDDY_ADMIN_TOKEN_FILE", "the admin token")
@file_option("--jwt-secret-file", "CHATBUDDY_JWT_SECRET_FILE", "the JWT secret")
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="PATH",
    help="Once listening, write {url, port, pid, admin_token_file} as JSON to PATH "
    "(for scripts, tests and process managers; the banner is for people).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    envvar="CHATBUDDY_LOG_LEVEL",
    show_envvar=True,
    help="How much to log.",
)
def serve(
    admin_token_file: str | None,
    jwt_secret_file: str | None,
    ready_file: Path | None,
    log_level: str,
    **options: Any,
) -> None:
    """Run the chat server: the page at /, the WebSocket at /ws/chat/{session_id}.

    \b
    Examples:
      chatbuddy serve                      # http://127.0.0.1:8000/
      chatbuddy serve --port 9000 --agent echo
      CHATBUDDY_SESSION_TTL=30m chatbuddy serve --host 0.0.0.0
      chatbuddy serve --store sqlite:/var/lib/chatbuddy/chat.db --retention 30d
      chatbuddy serve --store memory       # forget everything at exit (tests)
      chatbuddy serve --redis-url redis://127.0.0.1:6379 --port 8001   # one of many nodes
      chatbuddy serve --jwt-secret-file /etc/chatbuddy/jwt.secret   # signed-in customers
      chatbuddy serve --metrics-port 9100   # Prometheus scrapes 127.0.0.1:9100/metrics
      OPENAI_API_KEY=... chatbuddy serve --agent llm --llm-model gpt-4o-mini
      chatbuddy serve --agent llm --llm-model llama3.1 --llm-base-url http://127.0.0.1:11434/v1

    Conversations are kept in an SQLite file by default (printed at start);
    see docs/storage.md. Stops cleanly on Ctrl-C or SIGTERM, letting replies in
    progress finish.
    """
    options["admin_token"] = resolve(
        options.get("admin_token"),
        admin_token_file,
        option="--admin-token",
        twin="--admin-token-file",
    )
    options["jwt_secret"] = resolve(
        options.get("jwt_secret"),
        jwt_secret_file,
        option="--jwt-secret",
        twin="--jwt-secret-file",
    )
    try:
        settings = settings_from(options)
        # The llm agent's key: from the environment only, so it is in no `ps` listing
        # and no shell history (docs/llm.md).
        settings = dataclasses.replace(settings, llm_api_key=llm_api_key(os.environ))
    except ConfigurationError as exc:
        raise ConfigError(str(exc)) from None
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    console = Console(highlight=False)

    def announce(url: str, token_file: Path, pids: list[int] | None = None) -> None:
        processes = f", {len(pids)} workers" if pids else ""
        console.print(
            f"ChatBuddy is serving on [bold]{escape(url)}[/] "
            f"(agent: {escape(settings.agent)}, engine: {settings.engine}{processes}). "
            "Press Ctrl-C to stop.",
            soft_wrap=True,
        )
        console.print(
            escape(storage_line(settings.engine, settings.store_file, settings.retention)),
            soft_wrap=True,
        )
        console.print(
            f"Admin token: {escape(str(token_file))} (read by `chatbuddy stats`, `tail`, "
            "`sessions` on this machine)",
            soft_wrap=True,
            style="dim",
        )
        if settings.metrics_port:
            console.print(
                f"Metrics: http://127.0.0.1:{settings.metrics_port}/metrics (this machine only)",
                soft_wrap=True,
                style="dim",
            )
        if ready_file is not None:
            write_ready_file(ready_file, url, token_file, pids)

    if settings.workers > 1:
        serve_workers(settings, announce)
        return

    def ready(server: Server) -> None:
        assert server.token_file is not None
        announce(server.url, server.token_file)

    try:
        asyncio.run(run_server(settings, on_ready=ready))
    except ConfigurationError as exc:
        raise ConfigError(str(exc)) from None
    console.print("ChatBuddy stopped.")


def llm_api_key(environ: Mapping[str, str]) -> str | None:
    """The llm agent's API key: CHATBUDDY_LLM_API_KEY, else OPENAI_API_KEY, else None."""
    for name in ("CHATBUDDY_LLM_API_KEY", "OPENAI_API_KEY"):
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def serve_workers(settings: Settings, announce: Callable[[str, Path, list[int]], None]) -> None:
    """``--workers N``: N processes on one port, each a Redis node (chatbuddy/workers.py)."""
    try:
        settings = workers.prepare(settings, bind)
    except ConfigurationError as exc:
        raise ConfigError(str(exc)) from None

    def work(settings: Settings, ready: Callable[[], None]) -> None:
        try:
            asyncio.run(run_server(settings, on_ready=lambda server: ready()))
        except ConfigurationError as exc:
            # One line, as without workers (an agent's settings are checked as it is made,
            # in each worker); the parent then says no worker started.
            click.echo(f"Error: {exc}", err=True)
            raise SystemExit(ConfigError.exit_code) from None

    def all_ready(pids: list[int]) -> None:
        announce(page_url(settings.host, settings.port), token_path(settings.port), pids)

    try:
        # Each worker's metrics go to files in one folder, merged by whichever answers.
        with contextlib.ExitStack() as stack:
            if not settings.no_metrics:
                stack.enter_context(shared_folder())
            status = workers.run(settings, work, all_ready, gone=process_gone)
    except ConfigurationError as exc:
        raise ConfigError(str(exc)) from None
    Console(highlight=False).print("ChatBuddy stopped.")
    if status:
        raise SystemExit(status)


def write_ready_file(path: Path, url: str, token_file: Path, workers: list[int] | None) -> None:
    """Say where the server listens, atomically: a reader sees all of it or nothing."""
    document: dict[str, Any] = {
        "url": url,
        "port": urlsplit(url).port,
        "pid": os.getpid(),
        "admin_token_file": str(token_file),
    }
    if workers:
        document["workers"] = workers  # the worker processes' pids; "pid" is the parent's
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document) + "\n", encoding="utf-8")
    os.replace(temporary, path)
