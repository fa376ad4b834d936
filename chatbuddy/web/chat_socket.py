"""``/ws/chat/{session_id}``: the chat WebSocket.

Rules are the chat service's; this handler only refuses bad handshakes with
JSON (before any socket opens) and passes frames in and out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

import tornado.httputil
import tornado.ioloop
import tornado.iostream
import tornado.web
import tornado.websocket

from chatbuddy.audit import AuditLog
from chatbuddy.chat import ChatService, Grant, HandshakeRequest
from chatbuddy.errors import ConnectionClosed, HandshakeRejected, StorageUnavailable
from chatbuddy.identity import Identities, Identity
from chatbuddy.metrics import SocketMetrics
from chatbuddy.records import ClientInfo
from chatbuddy.text import is_valid_id, new_connection_id
from chatbuddy.web.admin import retrieve_exception
from chatbuddy.web.frame_reader import ChatProtocol
from chatbuddy.web.frame_writer import TurnWriter
from chatbuddy.web.http import QuietErrors, json_error
from chatbuddy.web.keepalive import KeepAlive
from chatbuddy.web.limits import ProxiedClients
from chatbuddy.wire.close_codes import Close
from chatbuddy.wire.compression import Deflate, worth_compressing
from chatbuddy.wire.subprotocol import SUBPROTOCOL, offered_identity, offered_token

log = logging.getLogger("chatbuddy.connections")

#: What a connection's handshake headers become once it is open (nothing writes to them).
_NO_HEADERS = tornado.httputil.HTTPHeaders()

#: Why a page of another site was refused, and what its operator can do.
ORIGIN_REFUSAL = "not this server's own and not allowed with --allowed-origin"


class ChatSocketHandler(QuietErrors, tornado.websocket.WebSocketHandler):
    """One chat connection; implements :class:`chatbuddy.chat.registry.Connection`."""

    # Slots, not the instance dict that Tornado's own attributes already fill: every
    # idle connection holds one handler (bytes per connection: docs/performance.md).
    __slots__ = (
        "_allowed_origins",
        "_audit",
        "_clients",
        "_closed_with",
        "_connection_id",
        "_deflate",
        "_expiry",
        "_grant",
        "_identities",
        "_identity",
        "_keepalive",
        "_last_heard",
        "_max_queued",
        "_messaged",
        "_metrics",
        "_opened_at",
        "_sent",
        "_service",
        "_taken_at_last_look",
        "_writer",
    )

    def initialize(
        self,
        service: ChatService,
        allowed_origins: tuple[str, ...],
        keepalive: KeepAlive,
        max_queued: int,
        audit: AuditLog,
        clients: ProxiedClients,
        identities: Identities,
        metrics: SocketMetrics,
        deflate: Deflate | None = None,
    ) -> None:
        # The chat logic; this handler only translates frames to calls on it.
        self._service = service
        # Counts connections, refusals, close codes and queued bytes (GET /metrics).
        self._metrics = metrics
        # Checks the customer's signed identity (JWT), if the server takes them.
        self._identities = identities
        # The identity this connection proved, if any; its expiry closes it (4004).
        self._identity: Identity | None = None
        # The timer of that close, while open.
        self._expiry: object | None = None
        # How frames are compressed, when the client offers it; None: never.
        self._deflate = deflate
        # Sites other than this server's own whose pages may connect.
        self._allowed_origins = allowed_origins
        # Most bytes waiting to be sent to this client before it is closed as too slow.
        self._max_queued = max_queued
        # Records opens, closes and refusals (never text or tokens).
        self._audit = audit
        # Caps chat sockets per forwarded client address behind a trusted proxy.
        self._clients = clients
        # The close code this server sent, if it closed the connection (for the logs).
        self._closed_with: int | None = None
        # Bytes the client had taken at the keep-alive's last look (see stalled()).
        self._taken_at_last_look = 0
        # Unique across nodes, so fan-out can exclude exactly this connection.
        self._connection_id = new_connection_id()
        # Set by the handshake; None until then.
        self._grant: Grant | None = None
        # For the close log line.
        self._opened_at = 0.0
        # Pings this connection and closes it when its peer goes silent.
        self._keepalive = keepalive
        # When the peer last sent anything (a message or a pong).
        self._last_heard = 0.0
        # Whether the peer sent a message, and we a frame, since the keep-alive's last
        # look (see chatting()).
        self._messaged = self._sent = False
        # Frames of this event-loop turn, written in one go (None: not open).
        self._writer: TurnWriter | None = None

    # -- Connection protocol ----------------------------------------------------

    @property
    def connection_id(self) -> str:
        return self._connection_id

    @property
    def session_id(self) -> str:
        assert self._grant is not None, "only admitted connections are registered"
        return self._grant.session.session_id

    @property
    def user_id(self) -> str | None:
        assert self._grant is not None, "only admitted connections are registered"
        return self._grant.user_id

    @property
    def remote_ip(self) -> str | None:
        return self.request.remote_ip

    @property
    def incarnation(self) -> str:
        assert self._grant is not None, "only admitted connections are registered"
        return self._grant.session.incarnation

    def send(self, frame: str) -> None:
        protocol = self.ws_connection
        if protocol is None or protocol.is_closing():
            raise ConnectionClosed(self._connection_id)
        writer = self._writer
        if writer is None:
            self._send_alone(protocol, frame)
        elif self.queued() + len(frame) > self._max_queued:
            self._full()
            raise ConnectionClosed(self._connection_id)
        else:
            writer.add(frame, compressed=worth_compressing(frame))
            self._sent = True

    def ping(self, data: str | bytes = b"") -> None:
        """A keep-alive ping, with the turn's other frames (one direct send, not a
        Tornado write of its own: the keep-alive pings a slice of connections at once)."""
        protocol, writer = self.ws_connection, self._writer
        if writer is None or protocol is None or protocol.is_closing():
            super().ping(data)  # not open yet, or closing: Tornado's own checks
            return
        writer.add_ping(data.encode() if isinstance(data, str) else data)

    def _send_alone(self, protocol: tornado.websocket.WebSocketProtocol, frame: str) -> None:
        """A frame without the turn's writer (the socket is not open yet): Tornado writes it."""
        try:
            future = protocol.write_message(frame)
        except (tornado.iostream.StreamClosedError, tornado.websocket.WebSocketClosedError):
            raise ConnectionClosed(self._connection_id) from None
        except tornado.iostream.StreamBufferFullError:
            self._full()
            raise ConnectionClosed(self._connection_id) from None
        # A write can still fail later when the peer vanishes; on_close handles
        # that, so the failure needs no one to await it.
        future.add_done_callback(retrieve_exception)
        if not future.done():  # the socket did not take it all: bytes wait for this client
            self._waiting()

    def _waiting(self) -> None:
        """A write left bytes waiting for this client: the high-water mark's metric."""
        self._metrics.write_queued(self.queued())

    def _full(self) -> None:
        """It does not read what it asks for: close it before it costs more memory.

        The close frame may wait behind the full buffer (if the peer ever reads again
        it learns why); Tornado aborts the connection if it does not answer."""
        stream = getattr(self.ws_connection, "stream", None)
        if stream is not None:
            stream.max_write_buffer_size = None  # the close frame must fit
        if self._closed_with is not None:
            return  # already closing
        self._audit.record(
            "disconnected",
            connection_id=self._connection_id,
            session_id=self.session_id,
            reason="slow_consumer",
            bytes=self.queued(),
        )
        self.close(Close.SLOW_CONSUMER, "reading too slowly")

    def queued(self) -> int:
        """Bytes written to this connection and not yet taken by the client's socket."""
        stream = getattr(self.ws_connection, "stream", None)
        pending = self._writer.pending if self._writer is not None else 0
        if stream is None:
            return pending
        return pending + int(stream._total_write_index - stream._total_write_done_index)

    def stalled(self) -> bool:
        """Whether bytes wait for the client and it took none since the keep-alive's last
        look: a peer that sends but does not read. (Frames of the current turn, not yet
        handed to the socket, do not count: nobody has offered them to the client yet.)"""
        stream = getattr(self.ws_connection, "stream", None)
        if stream is None:
            return False
        taken, before = int(stream._total_write_done_index), self._taken_at_last_look
        self._taken_at_last_look = taken
        return taken == before and stream._total_write_index > taken

    def chatting(self) -> bool:
        """Whether the client sent a message and was sent a frame since the keep-alive's
        last look (then forgotten until the next): a ping would tell nothing new."""
        both = self._messaged and self._sent
        self._messaged = self._sent = False
        return both

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if code is not None and self._closed_with is None and self.ws_connection is not None:
            self._closed_with = code
        if self._writer is not None:
            self._writer.flush()  # what was sent before the close goes before it
        super().close(code, reason)

    # -- handshake ----------------------------------------------------------------

    async def get(self, *args: Any, **kwargs: Any) -> None:
        session_id: str = args[0]
        self._clients.notice(self.request.headers)
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            self._refuse(426, "upgrade_required", "this endpoint speaks WebSocket only")
            return
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.check_origin(origin):
            # The reason goes to the log (the origin is a header: no query string, no
            # token); the shop's developer reads the same hint in the widget's console.
            log.warning("refused origin %r: %s", _clip(origin, 200), ORIGIN_REFUSAL)
            self._refuse(
                403, "origin_not_allowed", f"origin {origin!r} is not allowed: {ORIGIN_REFUSAL}"
            )
            return
        headers = self.request.headers
        offered = _offered_subprotocols(headers.get("Sec-WebSocket-Protocol", ""))
        token, signed = offered_token(offered), offered_identity(offered)
        if (token is not None or signed is not None) and SUBPROTOCOL not in offered:
            self._refuse(
                400,
                "subprotocol_required",
                f"a token in Sec-WebSocket-Protocol needs {SUBPROTOCOL!r} offered too",
            )
            return
        try:
            self._identity = await self._identities.check(signed)
        except HandshakeRejected as rejected:
            self._refuse(rejected.status, rejected.reason, rejected.message)
            return
        request = HandshakeRequest(
            session_id=session_id,
            user_id=self.get_query_argument("user_id", None),
            # The URL form is deprecated (proxies log URLs) but still understood.
            session_token=token or self.get_query_argument("session_token", None),
            client_info=ClientInfo(
                ip_address=self.request.remote_ip,
                user_agent=_clip(headers.get("User-Agent"), 512),
                accept_language=_clip(headers.get("Accept-Language"), 256),
            ),
            verified_user=self._identity.subject if self._identity is not None else None,
        )
        try:
            self._grant = await self._service.admit(request)
        except HandshakeRejected as rejected:
            self._refuse(rejected.status, rejected.reason, rejected.message)
            return
        except StorageUnavailable:
            self._refuse(503, "storage_unavailable", "sessions are unavailable; retry shortly")
            return
        ip = self.request.remote_ip or "-"
        if not self._clients.hold(ip):
            self._refuse(
                503, "too_many_connections", "too many connections from this address; retry later"
            )
            return
        if self._deflate is not None:
            # Tornado takes window sizes from the offer as they come: ours go in first.
            accepted = self._deflate.accept(headers.get("Sec-WebSocket-Extensions"))
            headers.pop("Sec-WebSocket-Extensions", None)
            if accepted is not None:
                headers["Sec-WebSocket-Extensions"] = accepted
        try:
            await super().get(*args, **kwargs)
        finally:  # the socket is closed, or never opened
            self._clients.release(ip)

    def check_origin(self, origin: str) -> bool:
        """The whole origin rule, checked before a session is created for the request.

        A page of this server (``Sec-Fetch-Site: same-origin``, or an ``Origin``
        whose host is the request's ``Host``) may connect; other sites only if
        allowed with ``--allowed-origin``. Clients that send no ``Origin`` (not
        browsers) are not asked. Tornado calls this again at the upgrade.

        .. warning:: a browser sends the page's origin with every WebSocket
           handshake and applies no same-origin policy to WebSockets: this check
           is what stops a foreign page from chatting as its visitor.
        """
        headers = self.request.headers
        if headers.get("Sec-Fetch-Site") in ("same-origin", "none"):
            return True
        if urlsplit(origin).netloc.lower() == headers.get("Host", "").lower():
            return True
        return origin.lower() in self._allowed_origins

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        """Tornado's protocol for the version asked, reading frames our way
        (frame_reader.py); None for a version Tornado does not speak."""
        protocol = super().get_websocket_protocol()
        if not isinstance(protocol, tornado.websocket.WebSocketProtocol13):
            return protocol
        return ChatProtocol(self, False, protocol.params)

    def get_compression_options(self) -> dict[str, Any] | None:
        """permessage-deflate's level and memory, when --compression is on."""
        return None if self._deflate is None else dict(self._deflate.options)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """Answer ``chatbuddy.v1`` when offered; never echo the token entry."""
        return SUBPROTOCOL if SUBPROTOCOL in subprotocols else None

    def _refuse(self, status: int, reason: str, message: str) -> None:
        session_id = self.path_args[0] if self.path_args else None
        self._audit.record(
            "handshake_refused",
            session_id=session_id if session_id and is_valid_id(session_id) else None,
            ip=self.request.remote_ip,
            status=status,
            reason=reason,
        )
        self._metrics.handshake_refused(reason)
        json_error(self, status, reason, message)

    # -- lifecycle --------------------------------------------------------------

    async def open(self, *args: str, **kwargs: str) -> None:
        assert self._grant is not None
        self._opened_at = time.monotonic()
        self._metrics.connection_opened()  # on_close counts it closed (it checks _opened_at)
        # A reply is several small frames (chunks, then the whole); without this,
        # Nagle holds each frame back until the client's delayed ACK (~40 ms).
        self.set_nodelay(True)
        # Past this many unsent bytes a write raises instead of buffering (see send()).
        stream = getattr(self.ws_connection, "stream", None)
        if stream is not None:
            stream.max_write_buffer_size = self._max_queued
            # Tornado's compressor for this connection, when permessage-deflate was agreed.
            compressor = getattr(self.ws_connection, "_compressor", None)
            self._writer = TurnWriter(
                stream,
                self._full,
                self._waiting,
                compress=compressor.compress if compressor else None,
            )
        self._last_heard = self._opened_at
        self._forget_handshake()
        self._keepalive.add(self)
        if self._identity is not None:
            # Closed when the identity expires: the page fetches a fresh token and comes back.
            left = self._identity.expires_at + self._identities.leeway - time.time()
            self._expiry = tornado.ioloop.IOLoop.current().call_later(
                max(0.0, left), self._identity_expired
            )
        self._audit.record(
            "connection_opened",
            connection_id=self._connection_id,
            session_id=self.session_id,
            user_id=self.user_id,
            ip=self.request.remote_ip,
            resumed=self._grant.resumed,
        )
        log.info(
            "open %s session=%s user=%s ip=%s resumed=%s",
            self._connection_id,
            self.session_id,
            self.user_id or "-",
            self.request.remote_ip,
            self._grant.resumed,
        )
        await self._service.attach(self, self._grant)

    def _forget_handshake(self) -> None:
        """Drop the upgrade's request and response headers and its HTTP connection (the
        socket is the WebSocket's now), used for the last time by now: ~2 KiB that every
        idle connection would hold (docs/performance.md)."""
        self.request.headers = self._headers = _NO_HEADERS
        self.request.connection = None

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        self._last_heard = time.monotonic()
        self._messaged = True
        # Most frames are handled at once; a chat message or a look-up returns a
        # coroutine, which the protocol awaits before it reads on (frame_reader.py).
        return self._service.handle_frame(self, message)

    def on_pong(self, data: bytes) -> None:
        self._last_heard = time.monotonic()

    def on_ping(self, data: bytes) -> None:
        self._service.pinged(self)

    @property
    def last_heard(self) -> float:
        return self._last_heard

    def _identity_expired(self) -> None:
        self._expiry = None
        self._audit.record(
            "disconnected",
            connection_id=self._connection_id,
            session_id=self.session_id,
            code=int(Close.IDENTITY_EXPIRED),
            reason="identity_expired",
        )
        self.close(Close.IDENTITY_EXPIRED, "signed identity expired; reconnect with a fresh one")

    def on_close(self) -> None:
        if self._expiry is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self._expiry)
            self._expiry = None
        if self._grant is None or not self._opened_at:
            return
        self._keepalive.discard(self)
        duration = time.monotonic() - self._opened_at
        code = self._closed_with if self._closed_with is not None else self.close_code
        by = "server" if self._closed_with is not None else "client"
        self._service.detach(self, close_code=code, duration=duration)
        self._metrics.connection_closed(code, by_server=self._closed_with is not None)
        log.info(
            "close %s session=%s code=%s by %s after %.1fs",
            self._connection_id,
            self.session_id,
            code,
            by,
            duration,
        )
        self._audit.record(
            "connection_closed",
            connection_id=self._connection_id,
            session_id=self.session_id,
            code=code,
            reason=by,
            ms=round(duration * 1000),
        )


def _offered_subprotocols(header: str) -> list[str]:
    """The names in a ``Sec-WebSocket-Protocol`` header (at most 8 looked at)."""
    return [name.strip() for name in header.split(",", 8)[:8] if name.strip()]


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]
