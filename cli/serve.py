"""``chatbuddy serve``: run the chat server."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.markup import escape

from chatbuddy.agents import AGENTS
from chatbuddy.errors import ConfigurationError
from chatbuddy.server import Server
from chatbuddy.server import serve as run_server
from chatbuddy.settings import DAY, Settings, parse_duration

from .errors import ConfigError


class Duration(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A duration option: 90, 90s, 30m, 24h, 7d."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ConfigurationError as exc:
            self.fail(str(exc), param, ctx)


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="CHATBUDDY_HOST",
    show_envvar=True,
    help="Address to listen on; 0.0.0.0 for every interface.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    envvar="CHATBUDDY_PORT",
    show_envvar=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--agent",
    type=click.Choice(sorted(AGENTS)),
    default="coordinator",
    show_default=True,
    envvar="CHATBUDDY_AGENT",
    show_envvar=True,
    help="Who answers: the shop assistant, or echo for tests and benchmarks.",
)
@click.option(
    "--session-ttl",
    type=Duration(),
    default=str(DAY),
    show_default="24h",
    envvar="CHATBUDDY_SESSION_TTL",
    show_envvar=True,
    help="Inactivity after which a session expires (sliding), e.g. 30m, 24h, 7d.",
)
@click.option(
    "--history-limit",
    type=click.IntRange(1, 100_000),
    default=200,
    show_default=True,
    envvar="CHATBUDDY_HISTORY_LIMIT",
    show_envvar=True,
    help="Messages kept per session.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    envvar="CHATBUDDY_RATE_LIMIT",
    show_envvar=True,
    help="Chat messages per second one connection may send (0: unlimited).",
)
@click.option(
    "--rate-burst",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    envvar="CHATBUDDY_RATE_BURST",
    show_envvar=True,
    help="Chat messages one connection may send at once.",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    envvar="CHATBUDDY_ALLOWED_ORIGINS",
    show_envvar=True,
    metavar="ORIGIN",
    help="Also accept WebSockets from this origin (repeatable), e.g. https://shop.example.",
)
@click.option(
    "--trust-proxy-headers",
    is_flag=True,
    envvar="CHATBUDDY_TRUST_PROXY_HEADERS",
    show_envvar=True,
    help="Take client IPs from X-Forwarded-For (only behind a proxy).",
)
@click.option(
    "--redis-url",
    envvar="CHATBUDDY_REDIS_URL",
    show_envvar=True,
    metavar="URL",
    help="Keep sessions in Redis and act as one service with every other server using it, "
    "e.g. redis://127.0.0.1:6379/0 (default: in memory, this process only).",
)
@click.option(
    "--redis-prefix",
    default="chatbuddy:",
    show_default=True,
    envvar="CHATBUDDY_REDIS_PREFIX",
    show_envvar=True,
    help="Prefix of ChatBuddy's Redis keys and channels.",
)
@click.option(
    "--admin-token",
    envvar="CHATBUDDY_ADMIN_TOKEN",
    show_envvar=True,
    help="Token for the admin API and commands (default: a random one, written to a "
    "file only you can read, where `chatbuddy stats` and friends find it).",
)
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
    host: str,
    port: int,
    agent: str,
    session_ttl: float,
    history_limit: int,
    rate_limit: float,
    rate_burst: int,
    allowed_origins: tuple[str, ...],
    trust_proxy_headers: bool,
    redis_url: str | None,
    redis_prefix: str,
    admin_token: str | None,
    ready_file: Path | None,
    log_level: str,
) -> None:
    """Run the chat server: the page at /, the WebSocket at /ws/chat/{session_id}.

    \b
    Examples:
      chatbuddy serve                      # http://127.0.0.1:8000/
      chatbuddy serve --port 9000 --agent echo
      CHATBUDDY_SESSION_TTL=30m chatbuddy serve --host 0.0.0.0
      chatbuddy serve --redis-url redis://127.0.0.1:6379 --port 8001   # one of many nodes

    Stops cleanly on Ctrl-C or SIGTERM, letting replies in progress finish.
    """
    try:
        settings = Settings(
            host=host,
            port=port,
            agent=agent,
            session_ttl=session_ttl,
            history_limit=history_limit,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
            allowed_origins=tuple(allowed_origins),
            trust_proxy_headers=trust_proxy_headers,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            admin_token=admin_token,
        )
    except ConfigurationError as exc:
        raise ConfigError(str(exc)) from None
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    console = Console(highlight=False)

    def announce(server: Server) -> None:
        url, token_file = server.url, server.token_file
        assert token_file is not None
        console.print(
            f"ChatBuddy is serving on [bold]{escape(url)}[/] "
            f"(agent: {escape(agent)}, engine: {server.engine.name}). "
            "Press Ctrl-C to stop.",
            soft_wrap=True,
        )
        console.print(
            f"Admin token: {escape(str(token_file))} (read by `chatbuddy stats`, `tail`, "
            "`sessions` on this machine)",
            soft_wrap=True,
            style="dim",
        )
        if ready_file is not None:
            write_ready_file(ready_file, url, token_file)

    try:
        asyncio.run(run_server(settings, on_ready=announce))
    except ConfigurationError as exc:
        raise ConfigError(str(exc)) from None
    console.print("ChatBuddy stopped.")


def write_ready_file(path: Path, url: str, token_file: Path) -> None:
    """Say where the server listens, atomically: a reader sees all of it or nothing."""
    document = {
        "url": url,
        "port": urlsplit(url).port,
        "pid": os.getpid(),
        "admin_token_file": str(token_file),
    }
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document) + "\n", encoding="utf-8")
    os.replace(temporary, path)
