"""Running a ChatBuddy server: build the parts, serve, shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tornado.httpserver
import tornado.netutil
import tornado.web

from chatbuddy import token_file
from chatbuddy.agents import Agent, make_agent
from chatbuddy.chat import ChatService
from chatbuddy.chat.counters import Counters
from chatbuddy.chat.registry import ConnectionRegistry
from chatbuddy.engine import Engine, MemoryEngine
from chatbuddy.errors import ConfigurationError
from chatbuddy.settings import Settings
from chatbuddy.tokens import new_token
from chatbuddy.web import make_app
from chatbuddy.web.keepalive import KeepAlive

log = logging.getLogger(__name__)

#: WebSocket close code for "server going away".
GOING_AWAY = 1001


@dataclass
class Server:
    """One process's shared state, built once and passed to whoever needs it."""

    settings: Settings
    engine: Engine
    registry: ConnectionRegistry
    counters: Counters
    service: ChatService
    app: tornado.web.Application
    #: Opens the admin API (given in the settings, or made at start).
    admin_token: str
    #: Pings chat connections and closes the silent ones (started by serve()).
    keepalive: KeepAlive


def build_server(
    settings: Settings, *, engine: Engine | None = None, agent: Agent | None = None
) -> Server:
    """Assemble engine, registry, agent, service and app from ``settings``.

    ``engine`` and ``agent`` replace the ones the settings name (tests, embedding).
    """
    if engine is None:
        engine = make_engine(settings)
    registry = ConnectionRegistry()
    counters = Counters()
    service = ChatService(
        engine=engine,
        registry=registry,
        agent=agent if agent is not None else make_agent(settings.agent),
        settings=settings,
        counters=counters,
    )
    admin_token = settings.admin_token or new_token()
    keepalive = KeepAlive(interval=settings.ping_interval, timeout=settings.ping_timeout)
    app = make_app(
        service=service,
        registry=registry,
        counters=counters,
        settings=settings,
        admin_token=admin_token,
        keepalive=keepalive,
    )
    return Server(settings, engine, registry, counters, service, app, admin_token, keepalive)


def make_engine(settings: Settings) -> Engine:
    """The Redis engine when a Redis URL is set, else the in-memory one."""
    if settings.redis_url:
        from chatbuddy.engine.redis import RedisEngine  # only Redis deployments need it

        return RedisEngine(
            url=settings.redis_url,
            prefix=settings.redis_prefix,
            session_ttl=settings.session_ttl,
            history_limit=settings.history_limit,
        )
    return MemoryEngine(session_ttl=settings.session_ttl, history_limit=settings.history_limit)


def bind(settings: Settings) -> list[object]:
    """Open the listening sockets, or raise ConfigurationError saying why not."""
    try:
        return list(tornado.netutil.bind_sockets(settings.port, settings.host))
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"{where} is already in use; stop the other server or choose another --port"
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ConfigurationError(
                f"not allowed to listen on {where}; try a port above 1024"
            ) from None
        raise ConfigurationError(f"cannot listen on {where}: {exc.strerror}") from None


async def serve(
    settings: Settings,
    *,
    on_ready: Callable[[str, Path], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), then shut down cleanly.

    ``on_ready`` gets the page URL and the admin token file once the server listens.
    """
    server = build_server(settings)
    sockets = bind(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.service.start()
    http = tornado.httpserver.HTTPServer(server.app, xheaders=settings.trust_proxy_headers)
    http.add_sockets(sockets)  # type: ignore[arg-type]
    sweeper = asyncio.create_task(_sweep(server.engine, settings.sweep_interval))
    server.keepalive.start()
    port = sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    token_path = token_file.write_token(port, server.admin_token)
    if on_ready is not None:
        on_ready(f"http://{host}:{port}/", token_path)
    try:
        await stop.wait()
    finally:
        token_file.remove_token(port, server.admin_token)
        log.info("shutting down")
        http.stop()
        server.keepalive.stop()
        cancelled = await server.service.drain(settings.shutdown_grace)
        if cancelled:
            log.warning("%d sessions still had replies in progress at shutdown", cancelled)
        for connection in server.registry:
            connection.close(GOING_AWAY, "server shutting down")
        sweeper.cancel()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(http.close_all_connections(), timeout=2.0)
        await server.service.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _sweep(engine: Engine, interval: float) -> None:
    """Delete expired sessions every ``interval`` seconds."""
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await engine.sweep_expired()
        except Exception:
            log.exception("sweeping expired sessions failed; will retry")
            continue
        if removed:
            log.info("swept %d expired sessions", removed)
