"""The chat service: admits connections and carries out what the rules decide.

The Tornado handler turns sockets into calls on this class and back; this
class knows nothing about Tornado. What to do with a frame is decided by
:func:`chatbuddy.chat.rules.decide`; this class does it: sends, queues,
refuses, or reads the store and shows what it found.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable

from chatbuddy.agents import Agent
from chatbuddy.audit import AuditLog
from chatbuddy.chat import frames, stops
from chatbuddy.chat.counters import Counters
from chatbuddy.chat.failures import client_error, session_gone
from chatbuddy.chat.feed import EventFeed
from chatbuddy.chat.frames import page_within
from chatbuddy.chat.handoff import Handoff
from chatbuddy.chat.node import LocalNode
from chatbuddy.chat.ratelimit import KeyedBuckets, TokenBucket
from chatbuddy.chat.registry import Connection
from chatbuddy.chat.replies import ReplyPipeline
from chatbuddy.chat.rules import (
    AskForPerson,
    Disconnect,
    Enqueue,
    MarkRead,
    Outcome,
    Peer,
    PendingMessage,
    Refuse,
    Send,
    SetReaction,
    ShowHistory,
    ShowSessionInfo,
    ShowTyping,
    StopReply,
    decide,
    strike,
)
from chatbuddy.chat.sessions import Grant, HandshakeRequest, SessionGate
from chatbuddy.engine import Engine
from chatbuddy.errors import (
    ClientError,
    SessionAccessDenied,
    SessionNotFound,
    StorageUnavailable,
)
from chatbuddy.metrics import NO_METRICS, Metrics
from chatbuddy.records import StoredMessage, utcnow
from chatbuddy.settings import Settings
from chatbuddy.text import new_connection_id
from chatbuddy.wire.close_codes import Close


class ChatService:
    """What happens to each connection and each frame it sends."""

    def __init__(
        self,
        *,
        engine: Engine,
        node: LocalNode,
        agent: Agent,
        settings: Settings,
        counters: Counters,
        audit: AuditLog | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        # Sessions and history.
        self._store = engine.store
        # This node's connections; every frame leaves through it.
        self._node = node
        # Limits (rates, queue lengths) come from here.
        self._settings = settings
        # Totals for the stats endpoint.
        self._counters = counters
        # Records disconnects for abuse (never what was said).
        self._audit = audit if audit is not None else AuditLog.disabled()
        # Counts messages, errors and rate-limit hits (GET /metrics).
        self._metrics = metrics
        # Who answers; its name is the agent_type of replies.
        self.agent_name = agent.name
        # Handshake rules: who may open which session.
        self._gate = SessionGate(
            engine.store,
            max_sessions=settings.max_sessions,
            new_per_minute=settings.new_sessions_per_minute,
            signed_identities=settings.signed_identities,
        )
        # Admin events, published through the bus to every watching node.
        self._feed = EventFeed(engine.bus)
        #: Operators taking conversations over from the agent (the admin API uses it too).
        self.handoff = Handoff(
            store=engine.store,
            node=node,
            feed=self._feed,
            grace=settings.operator_grace,
            agent_name=agent.name,
        )
        # Ordered reply production per session.
        self._replies = ReplyPipeline(
            store=engine.store,
            node=node,
            agent=agent,
            feed=self._feed,
            counters=counters,
            handoff=self.handoff,
            audit=self._audit,
            metrics=metrics,
        )
        # A cancel from a tab on any node reaches the pipeline here, which stops the
        # reply if this node writes it.
        node.on_control(self._control)
        # connection_id -> what the rules know of it (ids, budgets).
        self._peers: dict[str, Peer] = {}
        # Chat-message budgets shared by every connection of a session, of an address.
        self._session_budgets = KeyedBuckets(
            settings.session_rate_limit, max(1, round(3 * settings.session_rate_limit))
        )
        self._address_budgets = KeyedBuckets(
            settings.ip_rate_limit, max(1, round(3 * settings.ip_rate_limit))
        )
        # HTTP chat requests of one session share one connection's budget (see ask()).
        self._http_budgets = KeyedBuckets(settings.rate_limit, settings.rate_burst)
        # Set while the server shuts down: new chat messages are refused (retryable).
        self.draining = False

    async def finish(self, grace: float) -> int:
        """Let replies in progress finish (up to ``grace`` s); see ReplyPipeline.finish."""
        return await self._replies.finish(grace)

    # -- connection lifecycle -------------------------------------------------

    async def admit(self, request: HandshakeRequest) -> Grant:
        """Check a handshake; raises a HandshakeRejected subclass to refuse it."""
        return await self._gate.admit(request)

    async def attach(self, connection: Connection, grant: Grant) -> None:
        """Register an admitted connection and greet it with ``connection_established``.

        A new session is stored now that its socket is open; if its id was taken
        meanwhile, the connection is closed (4002) instead.
        """
        cid, sid = connection.connection_id, connection.session_id
        if not grant.resumed and not await self._gate.create(grant):
            connection.close(Close.SESSION_REPLACED, "the session id was just taken")
            return
        self._peers[cid] = self._peer(connection, grant)
        await self._node.join(connection)
        self._counters.connections_opened += 1
        now = utcnow()
        self._node.to_connection(cid, frames.greeting(cid, grant, now))
        self.handoff.greet(sid, grant.session, lambda frame: self._node.to_connection(cid, frame))
        await self._feed.opened(
            sid,
            now,
            connection_id=cid,
            user_id=connection.user_id,
            ip_address=grant.session.client_info.ip_address,
            resumed=grant.resumed,
        )

    def _peer(self, connection: Connection, grant: Grant) -> Peer:
        """What the rules need to know of a new connection, with its budgets."""
        settings = self._settings
        own = TokenBucket(settings.rate_limit, settings.rate_burst) if settings.rate_limit else None
        rate = settings.frame_rate_limit
        return Peer(
            connection.connection_id,
            connection.session_id,
            connection.user_id,
            incarnation=connection.incarnation,
            verified_user=grant.verified_user,
            ip=connection.remote_ip,
            limits=self._limits(connection.session_id, connection.remote_ip, own),
            frames=TokenBucket(rate, max(1, round(3 * rate))) if rate else None,
            strikes=(
                TokenBucket(1.0, settings.max_violations) if settings.max_violations else None
            ),
        )

    def _limits(
        self, session_id: str, ip: str | None, own: TokenBucket | None
    ) -> tuple[tuple[str, TokenBucket], ...]:
        """The chat-message budgets a sender draws on: ``own``, its session's, its address's."""
        settings = self._settings
        limits: list[tuple[str, TokenBucket]] = []
        if own is not None:
            limits.append(("connection", own))
        if settings.session_rate_limit:
            limits.append(("session", self._session_budgets.bucket(session_id)))
        if settings.ip_rate_limit and ip:
            limits.append(("address", self._address_budgets.bucket(ip)))
        return tuple(limits)

    def prune(self) -> int:
        """Forget the shared budgets nobody used lately (called now and then)."""
        return (
            self._session_budgets.prune()
            + self._address_budgets.prune()
            + self._http_budgets.prune()
            + self._gate.prune()
        )

    async def keep_sessions_alive(self) -> int:
        """An open tab keeps its session alive: mark this node's sessions active, and
        close the tabs of those that are gone (expired, or the store lost them: 4001)
        or whose id now belongs to a new session (4002). How many sessions went."""
        gone = await self._store.keep_alive(self._node.sessions_here())
        for session_id, replaced in gone:
            if replaced:
                # Tabs of the new session on this id (if any are here) stay open.
                current = await self._store.get_session(session_id)
                self._node.close_session(
                    session_id,
                    Close.SESSION_REPLACED,
                    "session replaced",
                    sparing=current.incarnation if current is not None else None,
                )
            else:
                self._node.close_session(session_id, Close.SESSION_EXPIRED, "session expired")
        return len(gone)

    def detach(self, connection: Connection, *, close_code: int | None, duration: float) -> None:
        """Forget a closed connection; replies in progress still complete and are stored."""
        self._node.leave(connection)
        self._peers.pop(connection.connection_id, None)
        if self._feed.wanted:  # checked here: no task for an event nobody reads
            self._node.spawn(
                self._feed.closed(
                    connection.session_id,
                    utcnow(),
                    connection_id=connection.connection_id,
                    close_code=close_code,
                    duration=duration,
                )
            )

    # -- frames ---------------------------------------------------------------

    def handle_frame(self, connection: Connection, frame: str | bytes) -> Awaitable[None] | None:
        """Answer one frame; every failure becomes one ``error`` frame, never a crash.

        The common outcomes (a chat message queued, a ping answered) are carried
        out at once; the others need I/O and come back as an awaitable to run.
        """
        peer = self._peers.get(connection.connection_id)
        if peer is None:  # closed while the frame was on its way
            return None
        outcome = decide(
            frame,
            peer,
            waiting=self._replies.waiting(peer.session_id),
            max_waiting=self._settings.max_pending_per_session,
            draining=self.draining,
        )
        match outcome:
            case Send(frame):
                self._node.to_connection(peer.connection_id, frame)
                return None
            case Enqueue(message):
                worker = self._replies.submit_here(message)
                self._received(peer, message, "websocket")
                return worker  # None, or the session's worker for this connection to run
            case Disconnect(code, reason):
                self._disconnect(connection, code, reason)
                return None
        return self._carry_out(peer, outcome)

    def _received(self, peer: Peer, message: PendingMessage, transport: str) -> None:
        """Count and record a message queued for a reply."""
        self._counters.messages_received += 1
        self._metrics.message_received(transport)
        if self._audit.enabled:
            self._audit.record(
                "message_received",
                session_id=peer.session_id,
                connection_id=peer.connection_id,
                chars=len(message.content),
            )

    # -- one message over HTTP --------------------------------------------------

    async def admit_request(self, request: HandshakeRequest) -> Grant:
        """Admit an HTTP chat request to its session, as a handshake is admitted, and
        create the session if it is new. Raises a HandshakeRejected subclass."""
        grant = await self._gate.admit(request)
        if not grant.resumed and not await self._gate.create(grant):
            raise SessionAccessDenied(
                f"session {request.session_id!r} was just opened by another client; "
                "start a new session"
            )
        return grant

    async def ask(self, grant: Grant, frame: str, *, ip: str | None) -> StoredMessage:
        """Answer one ``chat_message`` frame of an admitted HTTP request: the stored reply.

        The same rules as a socket's frame (:func:`rules.decide`), the same queue,
        agent and store; the message and its reply reach the session's open tabs
        too. An HTTP client counts as one connection of its session: its requests
        share the per-connection budget. Raises the ClientError a socket would
        have been sent as an ``error`` frame.
        """
        session = grant.session
        own = self._http_budgets.bucket(session.session_id) if self._settings.rate_limit else None
        peer = Peer(
            new_connection_id(),
            session.session_id,
            grant.user_id,
            incarnation=session.incarnation,
            ip=ip,
            limits=self._limits(session.session_id, ip, own),
        )
        outcome = decide(
            frame,
            peer,
            waiting=self._replies.waiting(peer.session_id),
            max_waiting=self._settings.max_pending_per_session,
            draining=self.draining,
        )
        if isinstance(outcome, Refuse):
            self._refused(peer, outcome.error, outcome.limit)
            with contextlib.suppress(StorageUnavailable):
                await self._feed.error(peer.session_id, utcnow(), outcome.error)
            raise outcome.error
        assert isinstance(outcome, Enqueue), "a chat_message is queued or refused"
        answer: asyncio.Future[StoredMessage] = asyncio.get_running_loop().create_future()
        message = dataclasses.replace(outcome.message, answer=answer)
        self._replies.submit(message)  # a task: this request only waits for the answer
        self._received(peer, message, "http")
        return await answer

    def pinged(self, connection: Connection) -> None:
        """A WebSocket ping from the client: it counts against the frame budget too."""
        peer = self._peers.get(connection.connection_id)
        if peer is None or peer.frames is None or peer.frames.try_acquire():
            return
        kicked = strike(peer)
        if kicked is not None:
            self._disconnect(connection, kicked.code, kicked.reason)

    def _disconnect(self, connection: Connection, code: int, reason: str) -> None:
        self._audit.record(
            "disconnected",
            connection_id=connection.connection_id,
            session_id=connection.session_id,
            ip=connection.remote_ip,
            code=code,
            reason=reason,
        )
        connection.close(code, reason)

    async def _carry_out(self, peer: Peer, outcome: Outcome) -> None:
        if isinstance(outcome, Refuse):
            await self._refuse(peer, outcome.error, outcome.limit)
            return
        try:
            await self._look_up(peer, outcome)
        except Exception as exc:
            request_type = getattr(outcome, "request_type", None)
            failure = client_error(exc, session_id=peer.session_id, request_type=request_type)
            await self._refuse(peer, failure)
            if isinstance(exc, SessionNotFound):
                self._node.close_connection(peer.connection_id, *session_gone(exc))

    def _control(self, session_id: str, message: str) -> None:
        stop = stops.decode(session_id, message)
        if stop is not None:
            self._replies.stop(stop)

    async def _look_up(self, peer: Peer, outcome: Outcome) -> None:
        match outcome:
            case StopReply():
                # To every node: the reply may be written where another tab sent it.
                await self._node.to_every_node(peer.session_id, stops.encode(outcome))
            case ShowSessionInfo():
                record = await self._store.touch_session(
                    peer.session_id, incarnation=peer.incarnation
                )
                connections = self._node.connections_in(peer.session_id)
                frame = frames.session_info(record, connections, utcnow())
                self._node.to_connection(peer.connection_id, frame)
            case ShowHistory(after, limit):
                sid = peer.session_id
                messages, has_more = await self._store.history(
                    sid, after=after, limit=limit, incarnation=peer.incarnation
                )
                messages, has_more = page_within(
                    messages, has_more, after, self._settings.history_page_bytes
                )
                found = await self._store.get_session(sid)
                last_id = None if found is None else found.last_message_id
                frame = frames.history(sid, messages, has_more, last_id, utcnow())
                self._node.to_connection(peer.connection_id, frame)
            case ShowTyping(state):
                await self.handoff.customer_typing(peer.session_id, state)
            case MarkRead(message_id):
                await self.handoff.customer_read(peer.session_id, peer.incarnation, message_id)
            case SetReaction(message_id, reaction):
                await self.handoff.customer_reaction(
                    peer.session_id, peer.incarnation, peer.connection_id, message_id, reaction
                )
            case AskForPerson():
                await self.handoff.customer_asks(
                    peer.session_id, peer.incarnation, peer.user_id, reason="customer_button"
                )

    async def _refuse(self, peer: Peer, failure: ClientError, limit: str | None = None) -> None:
        """Send ``failure`` to the connection that caused it (and to watching admins)."""
        self._refused(peer, failure, limit)
        now = utcnow()
        self._node.to_connection(peer.connection_id, frames.error(failure, peer.session_id, now))
        # The client was told; if the bus is down, admins elsewhere cannot be reached now.
        with contextlib.suppress(StorageUnavailable):
            await self._feed.error(peer.session_id, now, failure)

    def _refused(self, peer: Peer, failure: ClientError, limit: str | None) -> None:
        """Count and record a refusal (``limit``: the rate limit behind it, if one)."""
        self._counters.errors_sent += 1
        self._metrics.error_sent(failure.error_type)
        if limit is not None:
            self._metrics.rate_limited(limit)
        self._audit.record(
            "frame_refused",
            session_id=peer.session_id,
            connection_id=peer.connection_id,
            ip=peer.ip,
            error_type=failure.error_type,
        )
