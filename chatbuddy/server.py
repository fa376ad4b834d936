"""One ChatBuddy process: its parts built once from the settings, with a lifecycle.

:class:`Server` is what ``chatbuddy serve`` runs and what the tests start, so
the tests run the server users run: the same engine start, keep-alive, session
sweeper, admin token file and shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import tornado.httpserver
import tornado.netutil

from chatbuddy import token_file
from chatbuddy.admin_tokens import TokenBook, readable_by_others
from chatbuddy.agents import Agent, make_agent
from chatbuddy.audit import AuditLog
from chatbuddy.chat import ChatService, LocalNode
from chatbuddy.chat.counters import Counters
from chatbuddy.collector import CollectorPolicy
from chatbuddy.engine import Engine, make_engine
from chatbuddy.engine.measured import measured
from chatbuddy.errors import ConfigurationError, StorageUnavailable
from chatbuddy.identity import Identities
from chatbuddy.metrics import NO_METRICS, Metrics
from chatbuddy.metrics.prometheus import PrometheusMetrics
from chatbuddy.settings import Settings
from chatbuddy.tokens import new_token
from chatbuddy.web import make_app
from chatbuddy.web.auth import AdminAccess
from chatbuddy.web.keepalive import KeepAlive
from chatbuddy.web.limits import (
    ConnectionLimits,
    GuardedHTTPServer,
    ProxiedClients,
    connection_cap,
    raise_open_file_limit,
)
from chatbuddy.web.metrics import metrics_app
from chatbuddy.wire.close_codes import Close

#: Bytes read from a socket at once; a chat frame is a few hundred.
READ_CHUNK = 4096

log = logging.getLogger(__name__)

#: WebSocket close code for "server going away".
GOING_AWAY = int(Close.GOING_AWAY)
#: Seconds between looks for operators' holds that ran out (the customer is told
#: within this much of the grace's end).
HOLD_SWEEP_INTERVAL = 1.0


class Server:
    """A ChatBuddy server: ``async with Server(settings) as server:`` serves until the block ends.

    ``engine`` and ``agent`` replace the ones the settings name (tests, embedding).
    """

    def __init__(
        self, settings: Settings, *, engine: Engine | None = None, agent: Agent | None = None
    ) -> None:
        # Everything the process is configured with.
        self.settings = settings
        # Sessions and history (store) and fan-out between nodes (bus).
        engine = engine if engine is not None else make_engine(settings)
        # What GET /metrics shows (None: --no-metrics); every part reports to `metrics`.
        self.prometheus = None if settings.no_metrics else _prometheus(settings, engine)
        self.metrics: Metrics = self.prometheus or NO_METRICS
        if self.prometheus is not None:
            engine = measured(engine, self.prometheus)  # its round trips, timed
        self.engine = engine
        # Totals for the stats endpoint.
        self.counters = Counters()
        # One JSON line per operation that matters (off unless --audit-log).
        self.audit = AuditLog.open(settings.audit_log)
        # This process's connections and watchers; the bus delivers to it.
        self.node = LocalNode(self.engine.bus)
        # Who answers (closed on stop, if it holds connections: the llm agent's client).
        self.agent = agent if agent is not None else _agent(settings)
        # The chat rules and the reply pipeline.
        self.service = ChatService(
            engine=self.engine,
            node=self.node,
            agent=self.agent,
            settings=settings,
            counters=self.counters,
            audit=self.audit,
            metrics=self.metrics,
        )
        # Opens the admin API: the server's own token (given, or made now), role admin,
        # and the tokens file's, each with its role.
        self.access = AdminAccess(
            settings.admin_token or new_token(), audit=self.audit, book=_token_book(settings)
        )
        # Pings chat connections and closes the silent ones.
        self.keepalive = KeepAlive(interval=settings.ping_interval, timeout=settings.ping_timeout)
        # Keeps garbage collections short with many connections (chatbuddy/collector.py).
        self.collector = CollectorPolicy()
        # Behind a trusted proxy: chat sockets per forwarded address (else: a warning
        # when proxy headers arrive unbelieved).
        self.clients = ProxiedClients(
            per_ip=settings.max_connections_per_ip, trusted=settings.trust_proxy_headers
        )
        # Checks customers' signed identities (JWT), when the settings ask for them.
        self.identities = Identities(
            secret=settings.jwt_secret,
            jwks_url=settings.jwt_jwks_url,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            required=settings.jwt_required,
            leeway=settings.jwt_leeway,
            jwks_refresh=settings.jwks_refresh,
            jwks_min_refetch=settings.jwks_min_refetch,
        )
        # The routes, each handler given what it uses.
        self.app = make_app(
            settings=settings,
            engine=self.engine,
            node=self.node,
            service=self.service,
            counters=self.counters,
            access=self.access,
            keepalive=self.keepalive,
            audit=self.audit,
            clients=self.clients,
            identities=self.identities,
            metrics=self.metrics,
            scraped=self.prometheus if settings.metrics_port is None else None,
        )
        # Set by start(): the HTTP server, the sweeper task, where we listen, the token file.
        self._http: GuardedHTTPServer | None = None
        # The metrics port's server (--metrics-port), and the port it listens on.
        self._metrics_http: tornado.httpserver.HTTPServer | None = None
        self.metrics_port = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._holds: asyncio.Task[None] | None = None
        self.port = 0
        self.token_file: Path | None = None
        # Connections open now, in total and per address; made by start().
        self.limits: ConnectionLimits | None = None

    @property
    def url(self) -> str:
        """The page's URL (``http://HOST:PORT/``), once started."""
        return page_url(self.settings.host, self.port)

    async def start(self, sockets: list[socket.socket] | None = None) -> None:
        """Listen (on ``sockets``, or as the settings say) and start the background work.

        Raises ConfigurationError when the port cannot be had.
        """
        sockets = sockets if sockets is not None else bind(self.settings)
        try:  # before anything starts: one line if the port is taken
            metrics_sockets = self._bind_metrics()
        except ConfigurationError:
            for sock in sockets:
                sock.close()
            raise
        await self.engine.start(self.node)
        settings = self.settings
        http = GuardedHTTPServer(
            self.app,
            xheaders=settings.trust_proxy_headers,
            idle_connection_timeout=settings.http_timeout,
            body_timeout=settings.http_timeout,
            max_body_size=settings.max_body_size,
            # Bytes asked of the socket per read: Tornado zeroes a buffer of this size
            # for every read (64 KiB by default: a fifth of the CPU of a chat message).
            chunk_size=READ_CHUNK,
        )
        open_files = raise_open_file_limit()
        cap = connection_cap(settings.max_connections, open_files)
        if cap < settings.max_connections:
            log.warning(
                "at most %d connections: the open-file limit is %d (--max-connections %d)",
                cap,
                open_files,
                settings.max_connections,
            )
        limits = ConnectionLimits(
            total=cap,
            per_ip=settings.max_connections_per_ip,
            audit=self.audit,
            metrics=self.metrics,
        )
        # Behind a trusted proxy every connection comes from the proxy: the chat
        # socket counts clients by their forwarded address instead.
        http.guard(limits, per_peer=not settings.trust_proxy_headers)
        self.limits = limits
        http.add_sockets(sockets)
        self._http = http
        self.port = sockets[0].getsockname()[1]
        if metrics_sockets and self.prometheus is not None:
            self._metrics_http = tornado.httpserver.HTTPServer(metrics_app(self.prometheus))
            self._metrics_http.add_sockets(metrics_sockets)
            self.metrics_port = metrics_sockets[0].getsockname()[1]
        # An open tab keeps its session alive: touch them well within the TTL.
        every = max(1.0, min(self.settings.sweep_interval, self.settings.session_ttl / 3))
        self._keeper = asyncio.create_task(_keep_alive(self.service, every), name="session-keeper")
        self._sweeper = asyncio.create_task(
            _sweep(self.engine, self.service, self.settings.sweep_interval), name="session-sweeper"
        )
        self._holds = asyncio.create_task(
            _end_holds(self.service, HOLD_SWEEP_INTERVAL), name="hold-sweeper"
        )
        self.keepalive.start()
        self.collector.start()
        self.audit.start()
        self.identities.start()
        self.token_file = token_file.write_token(self.port, self.access.token)

    def _bind_metrics(self) -> list[socket.socket]:
        """The metrics port's sockets on 127.0.0.1 (none without --metrics-port)."""
        port = self.settings.metrics_port
        if port is None or self.prometheus is None:
            return []
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.settings.workers > 1:  # every worker answers there, with all workers' values
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ConfigurationError(
                f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror}; "
                "choose another --metrics-port"
            ) from None
        sock.setblocking(False)
        return [sock]

    async def stop(self) -> None:
        """Stop accepting, let replies in progress finish, close every connection."""
        if self._http is None:
            return
        self.service.draining = True
        token_file.remove_token(self.port, self.access.token)
        self._http.stop()
        if self._metrics_http is not None:
            self._metrics_http.stop()
            await self._metrics_http.close_all_connections()
            self._metrics_http = None
        self.keepalive.stop()
        self.collector.stop()
        cancelled = await self.service.finish(self.settings.shutdown_grace)
        if cancelled:
            log.warning("%d sessions still had replies in progress at shutdown", cancelled)
        # Replies published through the bus reach their tabs before the goodbye.
        with contextlib.suppress(TimeoutError, StorageUnavailable):
            await asyncio.wait_for(self.engine.bus.flush(), timeout=1.0)
        for connection in self.node.connections():
            connection.close(GOING_AWAY, "server shutting down")
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._keeper is not None:
            self._keeper.cancel()
        if self._holds is not None:
            self._holds.cancel()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._http.close_all_connections(), timeout=2.0)
        self._http.close_reserve()
        self._http = None
        await self.node.settle()
        await self.identities.close()
        await self.engine.close()
        close_agent = getattr(self.agent, "close", None)
        if close_agent is not None:
            await close_agent()
        self.audit.close()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def _prometheus(settings: Settings, engine: Engine) -> PrometheusMetrics:
    """The metrics of this node, labelled with its engine and its name (host:port)."""
    return PrometheusMetrics(
        engine=engine.name, node=f"{socket.gethostname()}:{settings.port}", ready=engine.ready
    )


def _agent(settings: Settings) -> Agent:
    """The agent the settings name, with its shop and order backend (ConfigurationError if bad)."""
    return make_agent(
        settings.agent,
        shop=Path(settings.shop) if settings.shop else None,
        order_backend=settings.order_backend,
        settings=settings,
    )


def _token_book(settings: Settings) -> TokenBook | None:
    """The admin tokens file the settings name (ConfigurationError if unusable)."""
    if not settings.admin_tokens_file:
        return None
    path = Path(settings.admin_tokens_file)
    book = TokenBook(path)
    if readable_by_others(path):
        log.warning("%s is readable by other users; `chmod 600 %s`", path, path)
    return book


def page_url(host: str, port: int) -> str:
    """``http://HOST:PORT/`` (an IPv6 address in brackets)."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def bind(settings: Settings) -> list[socket.socket]:
    """Open the listening sockets, or raise ConfigurationError saying why not."""
    try:
        # Workers of one machine share the port; the kernel spreads connections over them.
        reuse = settings.workers > 1
        return list(tornado.netutil.bind_sockets(settings.port, settings.host, reuse_port=reuse))
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
    on_ready: Callable[[Server], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), then shut down cleanly.

    ``on_ready`` gets the server once it listens.
    """
    server = Server(settings)
    sockets = bind(settings)  # before anything starts: a port in use is a one-line error
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start(sockets)
        if on_ready is not None:
            on_ready(server)
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _sweep(engine: Engine, service: ChatService, interval: float) -> None:
    """Delete expired sessions every ``interval`` seconds; forget idle rate budgets."""
    while True:
        await asyncio.sleep(interval)
        service.prune()
        try:
            removed = await engine.store.sweep_expired()
        except Exception:
            log.exception("sweeping expired sessions failed; will retry")
            continue
        if removed:
            log.info("swept %d expired sessions", removed)


async def _keep_alive(service: ChatService, interval: float) -> None:
    """Every ``interval`` seconds, mark the sessions with open tabs here as active."""
    while True:
        await asyncio.sleep(interval)
        try:
            gone = await service.keep_sessions_alive()
        except Exception:
            log.exception("keeping sessions with open tabs alive failed; will retry")
            continue
        if gone:
            log.info("closed the tabs of %d sessions that ended", gone)


async def _end_holds(service: ChatService, interval: float) -> None:
    """Every ``interval`` seconds, end the operators' holds that ran out (on any node):
    the assistant answers those customers again and tells them."""
    while True:
        await asyncio.sleep(interval)
        try:
            await service.handoff.end_expired()
        except Exception:
            log.exception("ending operators' holds that ran out failed; will retry")
