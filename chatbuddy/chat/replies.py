"""Answering chat messages: in order, one at a time per session, nothing lost.

Each session with work has one worker task that drains its queue. The reply is
stored and published to the session, not to the connection that asked, so a
client that disconnects mid-reply finds it in ``history`` later, and a second
tab of the same session sees it as it streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

from chatbuddy.agents import Agent, AgentReply, AgentRequest
from chatbuddy.chat.counters import Counters
from chatbuddy.chat.feed import EventFeed
from chatbuddy.chat.registry import ConnectionRegistry
from chatbuddy.engine import Engine
from chatbuddy.errors import ClientError, ErrorType, SessionNotFound, StorageUnavailable
from chatbuddy.records import StoredMessage, utcnow
from chatbuddy.wire.events import ReplyChunkEvent, ReplyDoneEvent, UserMessageEvent
from chatbuddy.wire.protocol import (
    ChatResponse,
    ChatResponseChunkData,
    ChatResponseData,
    envelope,
    error_frame,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PendingMessage:
    """A validated chat message waiting for its turn."""

    session_id: str
    connection_id: str
    user_id: str | None
    content: str
    client_message_id: str | None


class ReplyPipeline:
    """Stores each user message, runs the agent, streams and stores the reply."""

    def __init__(
        self,
        *,
        engine: Engine,
        agent: Agent,
        feed: EventFeed,
        registry: ConnectionRegistry,
        counters: Counters,
        max_pending: int,
    ) -> None:
        # Stores messages and publishes frames to the session on every node.
        self._engine = engine
        # Produces the replies.
        self._agent = agent
        # Tells watching admins what is said.
        self._feed = feed
        # This node's connections: for answers meant for one connection, and
        # for errors when the engine itself cannot be reached.
        self._registry = registry
        # Counts replies and errors for the stats endpoint.
        self._counters = counters
        # Refuse more than this many waiting messages per session (a flood guard).
        self._max_pending = max_pending
        # session_id -> messages not yet answered, oldest first.
        self._queues: dict[str, deque[PendingMessage]] = {}
        # session_id -> the task draining that queue; at most one per session.
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(self, message: PendingMessage) -> None:
        """Queue ``message``; raise ClientError(rate_limited) if the session is flooded."""
        queue = self._queues.get(message.session_id)
        if queue is None:  # not setdefault: that would build a deque for every message
            queue = self._queues[message.session_id] = deque()
        if len(queue) >= self._max_pending:
            raise ClientError(
                ErrorType.RATE_LIMITED,
                f"{len(queue)} messages are already waiting for a reply; try again shortly",
                request_type="chat_message",
            )
        queue.append(message)
        if message.session_id not in self._workers:
            self._workers[message.session_id] = asyncio.create_task(
                self._drain(message.session_id), name=f"replies:{message.session_id}"
            )

    async def drain(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for queued replies; cancel the rest.

        Returns how many session workers had to be cancelled.
        """
        workers = list(self._workers.values())
        if not workers:
            return 0
        _, pending = await asyncio.wait(workers, timeout=grace)
        for task in pending:
            task.cancel()
        return len(pending)

    async def _drain(self, session_id: str) -> None:
        queue = self._queues[session_id]
        try:
            while queue:
                message = queue.popleft()
                try:
                    await self._answer(message)
                except SessionNotFound:
                    await self._error(
                        message,
                        ErrorType.MISSING_SESSION,
                        "this session has expired; open a new one",
                    )
                except StorageUnavailable:
                    await self._error(
                        message,
                        ErrorType.STORAGE_UNAVAILABLE,
                        "the message could not be stored; resend it with its client_message_id",
                    )
                except Exception:
                    # Never let one bad message stop the session's queue.
                    log.exception("internal error answering a message in session %s", session_id)
                    await self._error(
                        message, ErrorType.INTERNAL_ERROR, "internal error; please retry"
                    )
        finally:
            del self._workers[session_id]
            if not queue:
                del self._queues[session_id]

    async def _answer(self, message: PendingMessage) -> None:
        engine, sid = self._engine, message.session_id
        added = await engine.add_user_message(
            sid,
            StoredMessage(
                id=0,  # assigned by the engine
                role="user",
                content=message.content,
                timestamp=utcnow(),
                user_id=message.user_id,
                client_message_id=message.client_message_id,
            ),
            exclude=message.connection_id,  # the sender has its own copy
        )
        user_message = added.message
        if added.reply_id is None:
            await self._answer_duplicate(message, user_message)
            return
        reply_id = added.reply_id
        if self._feed.wanted:
            await self._feed.emit(
                UserMessageEvent(
                    session_id=sid,
                    timestamp=user_message.timestamp,
                    message_id=user_message.id,
                    user_id=user_message.user_id,
                    content=user_message.content,
                )
            )
        started = time.perf_counter()
        try:
            reply = await self._agent.respond(
                AgentRequest(session_id=sid, user_id=message.user_id, content=message.content)
            )
            content = await self._stream(reply, sid, reply_id)
        except StorageUnavailable:
            raise
        except Exception as exc:
            # The type only: an agent's error text may quote the user's message.
            log.warning(
                "agent %s failed in session %s: %s", self._agent.name, sid, type(exc).__name__
            )
            await self._error(
                message,
                ErrorType.AGENT_ERROR,
                "the assistant could not answer this message; please try again",
                in_reply_to=user_message.id,
            )
            return
        now = utcnow()
        confidence = min(1.0, max(0.0, reply.confidence))
        metadata = {
            **reply.metadata,
            "processing_time": round(time.perf_counter() - started, 6),
            "agent": reply.agent,
        }
        response = ChatResponseData(
            message_id=reply_id,
            content=content,
            agent_type=self._agent.name,
            confidence=confidence,
            timestamp=now,
            metadata=metadata,
            in_reply_to=user_message.id,
        )
        await engine.add_reply(
            sid,
            StoredMessage(
                id=reply_id,
                role="assistant",
                content=content,
                timestamp=now,
                in_reply_to=user_message.id,
                agent=reply.agent,
                confidence=confidence,
                metadata=metadata,
            ),
            publish=envelope("chat_response", response, sid, now),
        )
        self._counters.replies_sent += 1
        if self._feed.wanted:
            await self._feed.emit(
                ReplyDoneEvent(
                    session_id=sid,
                    timestamp=now,
                    message_id=reply_id,
                    in_reply_to=user_message.id,
                    agent=reply.agent,
                    confidence=confidence,
                    processing_time=metadata["processing_time"],
                    content=content,
                )
            )

    async def _stream(self, reply: AgentReply, sid: str, reply_id: int) -> str:
        """Send the reply's chunks as they come (none for a whole reply); its text."""
        if reply.text is not None:
            if not reply.text:
                raise ValueError("the agent returned an empty reply")
            return reply.text
        assert reply.chunks is not None
        parts: list[str] = []
        async for delta in reply.chunks:
            if not delta:
                continue
            chunk = ChatResponseChunkData(message_id=reply_id, delta=delta, index=len(parts))
            parts.append(delta)
            now = utcnow()
            await self._engine.publish(sid, envelope("chat_response_chunk", chunk, sid, now))
            if self._feed.wanted:
                await self._feed.emit(
                    ReplyChunkEvent(
                        session_id=sid,
                        timestamp=now,
                        message_id=reply_id,
                        index=chunk.index,
                        delta=delta,
                    )
                )
        if not parts:
            raise ValueError("the agent returned an empty reply")
        return "".join(parts)

    async def _answer_duplicate(self, message: PendingMessage, original: StoredMessage) -> None:
        """A resend of a stored message: send its stored reply, or say it is on its way."""
        messages, _ = await self._engine.history(message.session_id, after=original.id, limit=50)
        reply = next(
            (m for m in messages if m.role == "assistant" and m.in_reply_to == original.id), None
        )
        if reply is None:
            await self._error(
                message,
                ErrorType.DUPLICATE_MESSAGE,
                f"message {message.client_message_id!r} was already received as "
                f"#{original.id}; its reply follows or is in history",
                in_reply_to=original.id,
                only_sender=True,
            )
            return
        data = ChatResponseData(
            message_id=reply.id,
            content=reply.content,
            agent_type=self._agent.name,
            confidence=reply.confidence or 0.0,
            timestamp=reply.timestamp,
            metadata=reply.metadata or {},
            in_reply_to=original.id,
        )
        frame = ChatResponse(data=data, session_id=message.session_id, timestamp=utcnow())
        self._registry.send_to(message.connection_id, frame.to_json())

    async def _error(
        self,
        message: PendingMessage,
        kind: ErrorType,
        text: str,
        *,
        in_reply_to: int | None = None,
        only_sender: bool = False,
    ) -> None:
        """Tell the session (or just the sender) that a message failed."""
        self._counters.errors_sent += 1
        now = utcnow()
        sid = message.session_id
        error = ClientError(kind, text, request_type="chat_message")
        frame = error_frame(error, session_id=sid, now=now, in_reply_to=in_reply_to)
        if only_sender:
            self._registry.send_to(message.connection_id, frame)
            return
        try:
            await self._engine.publish(sid, frame)
            await self._feed.error(sid, error, now)
        except StorageUnavailable:
            # The store is down, so other nodes are out of reach: tell this node's tabs.
            self._registry.send_to_session(sid, frame)
