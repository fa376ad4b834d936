"""What leaves for a reply: its chunks and tool status, the stored reply, errors.

:class:`ReplyOutput` is the part of :class:`~chatbuddy.chat.replies.ReplyPipeline`
that streams a reply to the session (:class:`Writing` is the reply being produced,
for stops), stores and publishes it, answers resends and tells the session of
failures; the pipeline adds the queues and workers that decide what to answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from chatbuddy.agents import Agent, AgentReply, ToolFinished, ToolStarted
from chatbuddy.audit import AuditLog
from chatbuddy.chat import frames
from chatbuddy.chat.counters import Counters
from chatbuddy.chat.feed import EventFeed
from chatbuddy.chat.node import LocalNode
from chatbuddy.chat.reply_outcomes import resolve
from chatbuddy.chat.rules import PendingMessage
from chatbuddy.engine import AddedMessage, SessionStore
from chatbuddy.errors import ClientError, ErrorType, StorageUnavailable
from chatbuddy.metrics import Metrics
from chatbuddy.records import stored_message, utcnow


class Stopped(Exception):
    """A reply's stream ends here: a stop came for it."""


@dataclass(slots=True)
class Writing:
    """The reply a session's worker is producing now, so a cancel can find it."""

    client_message_id: str | None
    incarnation: str
    #: The reply's id, once the message is stored.
    reply_id: int | None = None
    #: Runs the agent and streams; cancelled by a stop.
    task: asyncio.Task[str] | None = None
    #: A stop came for it.
    stopped: bool = False
    #: The text streamed so far (stored if it is stopped).
    parts: list[str] = field(default_factory=list)
    #: The agent's reply, once it started one.
    reply: AgentReply | None = None
    #: Waits until the message is stored and tells the session's other tabs of it:
    #: due before anything of the reply leaves, when the store deferred the message
    #: to commit it with the reply (None: done already).
    untold: Callable[[], Awaitable[None]] | None = None


class ReplyOutput:
    """Streams, stores and publishes replies; tells the session when one failed."""

    def __init__(
        self,
        *,
        store: SessionStore,
        node: LocalNode,
        agent: Agent,
        feed: EventFeed,
        counters: Counters,
        audit: AuditLog,
        metrics: Metrics,
    ) -> None:
        # Keeps the messages and replies.
        self._store = store
        # The way frames leave: to the session on every node, or to one connection.
        self._node = node
        # Produces the replies.
        self._agent = agent
        # Tells watching admins what is said.
        self._feed = feed
        # Counts replies and errors for the stats endpoint.
        self._counters = counters
        # Records each answer (ids, sizes, timings; never the text).
        self._audit = audit
        # Times each reply and counts errors; handed to the agent for its own (an LLM's).
        self._metrics = metrics

    async def _release(self, session_id: str, reply_id: int) -> None:
        """Give up the reply's lease, so a resend of its message is answered again."""
        with contextlib.suppress(StorageUnavailable):
            await self._store.release(session_id, reply_id)

    async def _told(self, writing: Writing) -> None:
        """Before anything of the reply leaves: its message, if the store deferred it,
        is stored and told to the session's other tabs (once)."""
        untold = writing.untold
        if untold is not None:
            writing.untold = None
            await untold()

    async def _store_reply(
        self,
        message: PendingMessage,
        writing: Writing,
        reply: AgentReply | None,
        content: str,
        in_reply_to: int,
        started: float,
        turn: float,
        *,
        cancelled: bool = False,
    ) -> None:
        """Store and publish the reply; a ``cancelled`` one holds what was written (maybe
        nothing), and ``reply`` is None when the agent had not started one."""
        sid, now = message.session_id, utcnow()
        reply_id = writing.reply_id
        assert reply_id is not None
        confidence = 0.0 if reply is None else min(1.0, max(0.0, reply.confidence))
        route = self._agent.name if reply is None else reply.agent
        metadata: dict[str, Any] = {
            **(reply.metadata if reply is not None else {}),
            "processing_time": round(time.perf_counter() - started, 6),
            "agent": route,
        }
        self._count_usage(metadata.get("usage"))
        frame = frames.response(
            sid,
            reply_id=reply_id,
            content=content,
            agent_type=self._agent.name,
            confidence=confidence,
            metadata=metadata,
            in_reply_to=in_reply_to,
            timestamp=now,
            now=now,
            cancelled=cancelled or None,
        )
        stored = stored_message(
            id=reply_id,
            role="assistant",
            content=content,
            timestamp=now,
            in_reply_to=in_reply_to,
            agent=route,
            confidence=confidence,
            metadata=metadata,
            cancelled=cancelled or None,
        )
        published = await self._store.add_reply(
            sid, stored, announce=frame, incarnation=message.incarnation
        )
        await self._told(writing)  # committed with the reply: only the others to tell
        if not published:
            await self._node.to_session(sid, message.incarnation, frame)
        self._counters.replies_sent += 1
        self._metrics.reply_sent(self._agent.name, route, time.perf_counter() - turn)
        resolve(message, stored)
        if self._audit.enabled:
            self._audit.record(
                "reply_cancelled" if cancelled else "message_answered",
                session_id=sid,
                message_id=reply_id,
                in_reply_to=in_reply_to,
                chars=len(content),
                ms=round(1000 * metadata["processing_time"], 2),
                agent=self._agent.name,
                route=route,
            )
        await self._feed.done(
            sid,
            now,
            message_id=reply_id,
            in_reply_to=in_reply_to,
            agent=route,
            confidence=confidence,
            processing_time=metadata["processing_time"],
            content=content,
        )

    def _count_usage(self, usage: object) -> None:
        """Add a reply's model tokens (``metadata.usage``) to the totals."""
        if not isinstance(usage, dict):
            return
        for key, total in (
            ("prompt_tokens", "prompt_tokens"),
            ("completion_tokens", "completion_tokens"),
        ):
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                setattr(self._counters, total, getattr(self._counters, total) + value)

    async def _stream(
        self,
        reply: AgentReply,
        message: PendingMessage,
        reply_id: int,
        asked: int,
        writing: Writing,
        turn: float,
    ) -> str:
        """Send the reply's chunks as they come (none for a whole reply), and what it is
        doing meanwhile; its text. ``writing.parts`` keeps what was sent, for a stopped
        reply; raises Stopped when a stop came for it between two pieces."""
        if reply.text is not None:
            if not reply.text:
                raise ValueError("the agent returned an empty reply")
            return reply.text
        assert reply.chunks is not None
        sid, parts = message.session_id, writing.parts
        async for item in reply.chunks:
            if writing.stopped:
                raise Stopped
            await self._told(writing)
            now = utcnow()
            if isinstance(item, ToolStarted):
                status = frames.reply_status(
                    sid, reply_id=reply_id, in_reply_to=asked, tool=item.tool, now=now
                )
                await self._node.to_session(sid, message.incarnation, status)
                continue
            if isinstance(item, ToolFinished):
                await self._feed.tool_call(
                    sid,
                    now,
                    message_id=reply_id,
                    tool=item.tool,
                    seconds=item.seconds,
                    ok=item.ok,
                    arguments=item.arguments,
                )
                continue
            if not item:
                continue
            index = len(parts)
            parts.append(item)
            frame = frames.chunk(sid, reply_id, index, item, now)
            await self._node.to_session(sid, message.incarnation, frame)
            if not index:
                self._metrics.first_chunk(self._agent.name, time.perf_counter() - turn)
            await self._feed.chunk(sid, now, message_id=reply_id, index=index, delta=item)
        if not parts:
            raise ValueError("the agent returned an empty reply")
        return "".join(parts)

    def _answer_resend(self, message: PendingMessage, added: AddedMessage) -> None:
        """A resend of a stored message whose reply exists or is being produced: send
        the stored reply, or say it follows (only to the connection that resent)."""
        sid, original, reply = message.session_id, added.message, added.reply
        now = utcnow()
        if reply is not None:
            frame = frames.stored_response(sid, reply, self._agent.name, now)
            self._node.to_connection(message.connection_id, frame)
            resolve(message, reply)
            return
        failure = ClientError(
            ErrorType.DUPLICATE_MESSAGE,
            f"message {message.client_message_id!r} was already received as "
            f"#{original.id}; its reply is being written and follows",
            request_type="chat_message",
        )
        self._counters.errors_sent += 1
        self._metrics.error_sent(failure.error_type)
        frame = frames.error(failure, sid, now, in_reply_to=original.id)
        self._node.to_connection(message.connection_id, frame)
        resolve(message, failure)

    async def _tell_session(
        self, message: PendingMessage, failure: ClientError, *, in_reply_to: int | None = None
    ) -> None:
        """Tell every tab of the session that a message failed (this node's, if the bus is down)."""
        self._counters.errors_sent += 1
        self._metrics.error_sent(failure.error_type)
        resolve(message, failure)
        now = utcnow()
        sid = message.session_id
        frame = frames.error(failure, sid, now, in_reply_to, message.client_message_id)
        await self._node.to_session_or_here(sid, message.incarnation, frame)
        # The tabs were told; if the bus is down, admins elsewhere cannot be reached now.
        with contextlib.suppress(StorageUnavailable):
            await self._feed.error(sid, now, failure)
