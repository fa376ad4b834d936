"""What one process accepts: connections in total and per client address, and
what it does when the operating system runs out of file descriptors.

Every TCP connection (page, API, WebSocket, or a slowloris socket that sends
half its headers) is counted when it is accepted, before any byte is read,
and refused past the caps with a short 503. A process at its open-file limit
cannot even accept to refuse: there, accepting pauses for a moment instead of
spinning (Tornado's accept loop would retry at once, forever, logging a
traceback each time), and one reserved descriptor lets it accept and close
the connection at the head of the queue so that clients are not left hanging.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket
from collections.abc import Callable
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.iostream
from tornado.ioloop import IOLoop

from chatbuddy.audit import AuditLog
from chatbuddy.metrics import NO_METRICS, SocketMetrics

log = logging.getLogger(__name__)

#: Seconds accepting pauses after the process ran out of descriptors.
PAUSE = 0.1
#: Connections taken from one listening socket per event-loop turn (Tornado's choice).
BATCH = 128
#: The answer to a connection over a cap; plain enough for any client to read.
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
    b"Content-Type: application/json; charset=utf-8\r\nRetry-After: 5\r\n"
    b'Content-Length: %d\r\n\r\n{"error":{"type":"%s","message":"%s"}}'
)


def raise_open_file_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # some systems refuse RLIM_INFINITY as a soft limit
            return soft
        log.info("raised the open-file limit from %d to %d", soft, hard)
        return hard
    return soft


def connection_cap(wanted: int, open_files: int) -> int:
    """The most connections that leave descriptors for everything else (Redis, files,
    the reserve): a quarter of the limit, at most 256, stays free."""
    headroom = min(256, open_files // 4)
    return max(1, min(wanted, open_files - headroom))


class ConnectionLimits:
    """Counts open connections, in total and per client address."""

    def __init__(
        self, *, total: int, per_ip: int, audit: AuditLog, metrics: SocketMetrics = NO_METRICS
    ) -> None:
        # Most connections at once.
        self.total = total
        # Most connections from one address at once (0: no per-address cap).
        self.per_ip = per_ip
        # Where refusals are recorded, and counted.
        self._audit = audit
        self._metrics = metrics
        # How many connections are open now.
        self.open = 0
        # address -> open connections from it; addresses with none are removed.
        self._by_ip: dict[str, int] = {}

    def admit(self, ip: str, *, per_ip: bool = True) -> str | None:
        """Count a new connection from ``ip``, or say why it is refused (``per_ip``:
        whether the per-address cap applies; not to a trusted proxy's address)."""
        if self.open >= self.total:
            return "server_full"
        if per_ip and self.per_ip and self._by_ip.get(ip, 0) >= self.per_ip:
            return "too_many_connections"
        self.open += 1
        self._by_ip[ip] = self._by_ip.get(ip, 0) + 1
        return None

    def release(self, ip: str) -> None:
        self.open -= 1
        left = self._by_ip.get(ip, 0) - 1
        if left > 0:
            self._by_ip[ip] = left
        else:
            self._by_ip.pop(ip, None)

    def refused(self, ip: str, reason: str) -> None:
        self._audit.record("connection_refused", ip=ip, reason=reason)
        self._metrics.connection_refused(reason)


class ProxiedClients:
    """Per-client caps behind a proxy, where every TCP peer is the proxy.

    With ``--trust-proxy-headers`` the accept-time cap cannot tell clients apart,
    so the chat socket counts its connections by the forwarded address here.
    Without it, a request that carries forwarding headers means a proxy nobody
    trusts: every customer shares the proxy's address and its budgets, which the
    operator is told once.
    """

    def __init__(self, *, per_ip: int, trusted: bool) -> None:
        # Most chat sockets from one forwarded address (0: no cap); used when trusted.
        self.per_ip = per_ip if trusted else 0
        # Whether X-Forwarded-For / X-Real-Ip are believed (--trust-proxy-headers).
        self.trusted = trusted
        # address -> chat sockets from it; addresses with none are removed.
        self._by_ip: dict[str, int] = {}
        # Whether the untrusted-proxy warning was logged.
        self._warned = False

    def hold(self, ip: str) -> bool:
        """Count a chat socket from ``ip``; False if it is over the cap."""
        if not self.per_ip:
            return True
        held = self._by_ip.get(ip, 0)
        if held >= self.per_ip:
            return False
        self._by_ip[ip] = held + 1
        return True

    def release(self, ip: str) -> None:
        if not self.per_ip:
            return
        left = self._by_ip.get(ip, 0) - 1
        if left > 0:
            self._by_ip[ip] = left
        else:
            self._by_ip.pop(ip, None)

    def notice(self, headers: tornado.httputil.HTTPHeaders) -> None:
        """Warn once when requests come through a proxy that is not trusted."""
        if self.trusted or self._warned:
            return
        if "X-Forwarded-For" in headers or "X-Real-Ip" in headers or "Forwarded" in headers:
            self._warned = True
            log.warning(
                "requests carry proxy headers (X-Forwarded-For) but --trust-proxy-headers "
                "is off: every client counts as the proxy's address, so they share its "
                "per-address limits; behind your own proxy, start with --trust-proxy-headers"
            )


class GuardedHTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server, with :class:`ConnectionLimits` at accept time and an
    accept loop that survives running out of descriptors."""

    limits: ConnectionLimits
    #: Whether the caps count the TCP peer (False behind a trusted proxy, where
    #: every connection comes from the proxy; the chat socket counts clients then).
    per_peer: bool

    def guard(self, limits: ConnectionLimits, *, per_peer: bool) -> None:
        self.limits = limits
        self.per_peer = per_peer
        self._reserve: int | None = _open_reserve()

    def handle_stream(self, stream: tornado.iostream.IOStream, address: Any) -> None:
        ip = _ip(address) if self.per_peer else "proxy"
        refusal = self.limits.admit(ip, per_ip=self.per_peer)
        if refusal is not None:
            self.limits.refused(ip, refusal)
            _refuse(stream, refusal)
            return
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        context = getattr(server_conn, "context", None)
        address = getattr(context, "address", None)
        self.limits.release(_ip(address) if self.per_peer else "proxy")

    def add_sockets(self, sockets: Any) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept(sock)

    def _accept(self, sock: socket.socket) -> Callable[[], None]:
        """Tornado's accept loop, but at the open-file limit it sheds one connection
        with the reserved descriptor and pauses, instead of spinning."""
        io_loop = IOLoop.current()
        # removed: stop() was called; paused: waiting out a shortage; warned: said so
        # once for this shortage (it ends when an accept succeeds).
        state = {"removed": False, "paused": False, "warned": False}

        def on_readable(fd: Any, events: int) -> None:
            for _ in range(BATCH):
                if state["removed"]:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.EMFILE, errno.ENFILE):
                        raise
                    pause()
                    return
                state["warned"] = False
                self._handle_connection(connection, address)

        def pause() -> None:
            if not state["warned"]:
                state["warned"] = True
                log.warning(
                    "out of file descriptors (%d open connections): refusing new ones "
                    "for a moment; raise the open-file limit or lower --max-connections",
                    self.limits.open,
                )
            state["paused"] = True
            io_loop.remove_handler(sock)
            self._shed(sock)
            io_loop.call_later(PAUSE, resume)

        def resume() -> None:
            if not state["removed"]:
                state["paused"] = False
                io_loop.add_handler(sock, on_readable, IOLoop.READ)

        def remove() -> None:
            state["removed"] = True
            if not state["paused"]:
                io_loop.remove_handler(sock)

        io_loop.add_handler(sock, on_readable, IOLoop.READ)
        return remove

    def _shed(self, sock: socket.socket) -> None:
        """Use the reserved descriptor to accept one waiting connection and close it."""
        if self._reserve is None:
            return
        os.close(self._reserve)
        self._reserve = None
        try:
            connection, _ = sock.accept()
            connection.close()
        except OSError:
            pass
        self._reserve = _open_reserve()

    def close_reserve(self) -> None:
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None


def _open_reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None


def _ip(address: Any) -> str:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "local"


def _refuse(stream: tornado.iostream.IOStream, reason: str) -> None:
    message = {
        "server_full": "the server is at its connection limit; retry shortly",
        "too_many_connections": "too many connections from your address; close some",
    }[reason]
    body_length = len('{"error":{"type":"","message":""}}') + len(reason) + len(message)
    response = _REFUSAL % (body_length, reason.encode(), message.encode())

    def close(future: Any) -> None:
        if not future.cancelled():
            future.exception()  # a peer that vanished first is fine: we are closing anyway
        stream.close()

    stream.write(response).add_done_callback(close)
