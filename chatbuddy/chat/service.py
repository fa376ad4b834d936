"""The chat service: what happens to each frame a client sends.

The Tornado handler turns sockets into calls on this class and back; this
class knows nothing about Tornado, so every rule here is testable on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from chatbuddy.agents import Agent
from chatbuddy.chat.counters import Counters
from chatbuddy.chat.feed import EventFeed
from chatbuddy.chat.ratelimit import TokenBucket
from chatbuddy.chat.registry import Connection, ConnectionRegistry
from chatbuddy.chat.replies import PendingMessage, ReplyPipeline
from chatbuddy.chat.sessions import Grant, HandshakeRequest, SessionGate
from chatbuddy.chat.watchers import Watcher, Watchers
from chatbuddy.engine import Engine, Frame, Presence
from chatbuddy.errors import ClientError, ErrorType, SessionNotFound, StorageUnavailable
from chatbuddy.records import utcnow
from chatbuddy.settings import Settings
from chatbuddy.wire.events import ConnectionClosedEvent, ConnectionOpenedEvent
from chatbuddy.wire.protocol import (
    ChatMessage,
    ConnectionEstablished,
    ConnectionEstablishedData,
    History,
    HistoryData,
    HistoryRequest,
    Ping,
    Pong,
    PongData,
    SessionInfo,
    SessionInfoData,
    SessionInfoRequest,
    error_frame,
    parse_client_message,
)

log = logging.getLogger(__name__)


class ChatService:
    """Admits connections, answers frames and fans replies out."""

    def __init__(
        self,
        *,
        engine: Engine,
        registry: ConnectionRegistry,
        agent: Agent,
        settings: Settings,
        counters: Counters,
    ) -> None:
        # Sessions, history and fan-out; shared by every node of a deployment.
        self._engine = engine
        # This node's connections; shared with the HTTP handlers.
        self._registry = registry
        # Limits (rates, queue lengths) come from here.
        self._settings = settings
        # Totals for the stats endpoint.
        self._counters = counters
        # Handshake rules: who may open which session.
        self._gate = SessionGate(engine)
        # Admin events, published through the engine to every watching node.
        self._feed = EventFeed(engine)
        # This node's admin tail sockets.
        self._watchers = Watchers()
        # Ordered reply production per session.
        self._replies = ReplyPipeline(
            engine=engine,
            agent=agent,
            feed=self._feed,
            registry=registry,
            counters=counters,
            max_pending=settings.max_pending_per_session,
        )
        # connection_id -> its chat-message rate limiter.
        self._limiters: dict[str, TokenBucket] = {}
        # Sessions this node receives published frames for.
        self._subscribed: set[str] = set()
        # Whether this node receives admin events.
        self._watching_events = False
        # Subscription changes run one at a time (see _follow).
        self._following = asyncio.Lock()
        # Fire-and-forget calls from sync callbacks; held so they are not garbage-collected.
        self._background: set[asyncio.Task[None]] = set()

    @property
    def engine(self) -> Engine:
        return self._engine

    async def start(self) -> None:
        """Connect the engine's fan-out to this node's connections and watchers."""
        await self._engine.start(self)

    async def close(self) -> None:
        """Let fire-and-forget work finish, then close the engine."""
        await self.settle()
        await self._engine.close()

    async def settle(self, within: float = 1.0) -> None:
        """Wait (up to ``within`` s) for fire-and-forget work: events, subscription changes."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=within)

    async def drain(self, grace: float) -> int:
        """Let replies in progress finish (up to ``grace`` s); see ReplyPipeline.drain."""
        return await self._replies.drain(grace)

    # -- connection lifecycle -------------------------------------------------

    async def admit(self, request: HandshakeRequest) -> Grant:
        """Check a handshake; raises a HandshakeRejected subclass to refuse it."""
        return await self._gate.admit(request)

    async def attach(self, connection: Connection, grant: Grant) -> None:
        """Register an admitted connection and greet it with ``connection_established``."""
        sid = connection.session_id
        self._registry.add(connection)
        if self._settings.rate_limit > 0:
            self._limiters[connection.connection_id] = TokenBucket(
                self._settings.rate_limit, self._settings.rate_burst
            )
        await self._follow(sid)
        self._counters.connections_opened += 1
        now = utcnow()
        greeting = ConnectionEstablishedData(
            connection_id=connection.connection_id,
            session_id=sid,
            user_id=connection.user_id,
            timestamp=now,
            session_token=grant.session_token,
            resumed=grant.resumed,
            last_message_id=grant.session.last_message_id,
        )
        self._send(
            connection,
            ConnectionEstablished(data=greeting, session_id=sid, timestamp=now).to_json(),
        )
        if self._feed.wanted:
            await self._feed.emit(
                ConnectionOpenedEvent(
                    session_id=sid,
                    timestamp=now,
                    connection_id=connection.connection_id,
                    user_id=connection.user_id,
                    ip_address=grant.session.client_info.ip_address,
                    resumed=grant.resumed,
                )
            )

    def detach(self, connection: Connection, *, close_code: int | None, duration: float) -> None:
        """Forget a closed connection; replies in progress still complete and are stored."""
        self._registry.remove(connection)
        self._limiters.pop(connection.connection_id, None)
        sid = connection.session_id
        if sid in self._subscribed and not self._registry.in_session(sid):
            self._spawn(self._follow(sid))
        if self._feed.wanted:
            event = ConnectionClosedEvent(
                session_id=sid,
                timestamp=utcnow(),
                connection_id=connection.connection_id,
                close_code=close_code,
                duration=round(duration, 3),
            )
            self._spawn(self._feed.emit(event))

    # -- admin watchers ---------------------------------------------------------

    async def watch(self, watcher: Watcher, session_id: str | None) -> None:
        """Stream admin events (of one session, or all) to ``watcher``."""
        self._watchers.add(watcher, session_id)
        await self._follow(None)

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.remove(watcher)
        if not self._watchers:
            self._spawn(self._follow(None))

    async def _follow(self, session_id: str | None) -> None:
        """Make the engine's subscription match this node's state: a session's frames
        while it has connections here, admin events (``None``) while someone watches.

        Changes run one at a time and each looks at the state when it runs, so a
        tab that closes and reopens at once cannot leave the session unsubscribed.
        """
        async with self._following:
            if session_id is None:
                wanted = bool(self._watchers)
                if wanted != self._watching_events:
                    self._watching_events = wanted
                    await (
                        self._engine.subscribe_events()
                        if wanted
                        else self._engine.unsubscribe_events()
                    )
                return
            wanted = bool(self._registry.in_session(session_id))
            if wanted and session_id not in self._subscribed:
                self._subscribed.add(session_id)
                await self._engine.subscribe(session_id)
            elif not wanted and session_id in self._subscribed:
                self._subscribed.discard(session_id)
                await self._engine.unsubscribe(session_id)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- frames ---------------------------------------------------------------

    async def handle_frame(self, connection: Connection, frame: str | bytes) -> None:
        """Answer one frame; every failure becomes one ``error`` frame, never a crash."""
        request_type: str | None = None
        try:
            message = parse_client_message(frame)
            request_type = message.type
            if isinstance(message, ChatMessage):
                self._accept_chat_message(connection, message)
            elif isinstance(message, Ping):
                self._pong(connection, message)
            elif isinstance(message, SessionInfoRequest):
                await self._session_info(connection)
            elif isinstance(message, HistoryRequest):
                await self._history(connection, message)
        except ClientError as error:
            await self._report_error(connection, error)
        except SessionNotFound:
            await self._report_error(
                connection,
                ClientError(
                    ErrorType.MISSING_SESSION,
                    f"session {connection.session_id!r} has expired; open a new one",
                    request_type=request_type,
                ),
            )
        except StorageUnavailable:
            await self._report_error(
                connection,
                ClientError(
                    ErrorType.STORAGE_UNAVAILABLE,
                    "storage is unavailable; try again shortly",
                    request_type=request_type,
                ),
            )
        except Exception:
            log.exception("internal error on a %s frame", request_type or "unparsed")
            await self._report_error(
                connection,
                ClientError(
                    ErrorType.INTERNAL_ERROR,
                    "internal error; the connection is still open",
                    request_type=request_type,
                ),
            )

    def _accept_chat_message(self, connection: Connection, message: ChatMessage) -> None:
        if message.session_id != connection.session_id:
            raise ClientError(
                ErrorType.SESSION_MISMATCH,
                f"session_id {message.session_id!r} does not match this connection's "
                f"session {connection.session_id!r}",
                request_type=message.type,
            )
        if message.user_id is not None and message.user_id != connection.user_id:
            raise ClientError(
                ErrorType.VALIDATION_ERROR,
                f"user_id {message.user_id!r} does not match this connection's user "
                f"{connection.user_id!r}",
                request_type=message.type,
            )
        limiter = self._limiters.get(connection.connection_id)
        if limiter is not None and not limiter.try_acquire():
            raise ClientError(
                ErrorType.RATE_LIMITED,
                f"too many messages; the limit is {limiter.rate:g} per second",
                request_type=message.type,
            )
        self._replies.submit(
            PendingMessage(
                session_id=connection.session_id,
                connection_id=connection.connection_id,
                user_id=connection.user_id,
                content=message.content,
                client_message_id=message.client_message_id,
            )
        )
        self._counters.messages_received += 1

    def _pong(self, connection: Connection, message: Ping) -> None:
        now = utcnow()
        pong = Pong(
            data=PongData(timestamp=now, client_timestamp=message.timestamp),
            session_id=connection.session_id,
            timestamp=now,
        )
        self._send(connection, pong.to_json())

    async def _session_info(self, connection: Connection) -> None:
        sid = connection.session_id
        record = await self._engine.touch_session(sid)
        now = utcnow()
        info = SessionInfoData(
            session_id=sid,
            user_id=record.user_id,
            created_at=record.created_at,
            connected_at=record.connected_at,
            last_activity=record.last_activity,
            message_count=record.message_count,
            client_info=record.client_info,
            connections=len(self._registry.in_session(sid)),
        )
        self._send(connection, SessionInfo(data=info, session_id=sid, timestamp=now).to_json())

    async def _history(self, connection: Connection, message: HistoryRequest) -> None:
        sid = connection.session_id
        messages, has_more = await self._engine.history(
            sid, after=message.after, limit=message.limit
        )
        record = await self._engine.get_session(sid)
        data = HistoryData(
            messages=messages,
            has_more=has_more,
            last_message_id=None if record is None else record.last_message_id,
        )
        self._send(connection, History(data=data, session_id=sid, timestamp=utcnow()).to_json())

    # -- sending --------------------------------------------------------------

    # -- NodeLink: what the engine calls back ----------------------------------

    def deliver(self, session_id: str, frame: Frame, exclude: str | None) -> None:
        """Frames published to a session reach its connections on this node."""
        self._registry.send_to_session(session_id, frame, exclude=exclude)

    def deliver_event(self, session_id: str, frame: str) -> None:
        """Admin events reach this node's watchers."""
        self._watchers.deliver(session_id, frame)

    def presence(self) -> Presence:
        """Who is connected to this node."""
        registry = self._registry
        return Presence(len(registry), registry.session_counts(), registry.user_counts())

    def _send(self, connection: Connection, frame: str) -> None:
        self._registry.send_to(connection.connection_id, frame)

    async def _report_error(self, connection: Connection, error: ClientError) -> None:
        self._counters.errors_sent += 1
        now = utcnow()
        self._send(connection, error_frame(error, session_id=connection.session_id, now=now))
        await self._feed.error(connection.session_id, error, now)
