"""Answering chat messages: in order, one at a time per session, nothing lost.

Each session with work has one worker that drains its queue: a task of its own,
or, for an agent that ``answers_at_once``, the connection whose message started
it (no task per message; a tenth fewer instructions per echoed message). The reply is
stored and published to the session, not to the connection that asked, so a
client that disconnects mid-reply finds it in ``history`` later, and a second
tab of the same session sees it as it streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from chatbuddy.agents import Agent, AgentReply, AgentRequest
from chatbuddy.audit import AuditLog
from chatbuddy.chat import frames
from chatbuddy.chat.counters import Counters
from chatbuddy.chat.failures import client_error, session_gone
from chatbuddy.chat.feed import EventFeed
from chatbuddy.chat.handoff import Handoff, ReplyChoice, reply_choice
from chatbuddy.chat.node import LocalNode
from chatbuddy.chat.rules import PendingMessage
from chatbuddy.engine import AddedMessage, SessionStore
from chatbuddy.errors import ClientError, ErrorType, SessionNotFound, StorageUnavailable
from chatbuddy.metrics import NO_METRICS, Metrics
from chatbuddy.records import StoredMessage, stored_message, utcnow

log = logging.getLogger(__name__)


class ReplyPipeline:
    """Stores each user message, runs the agent, streams and stores the reply."""

    def __init__(
        self,
        *,
        store: SessionStore,
        node: LocalNode,
        agent: Agent,
        feed: EventFeed,
        counters: Counters,
        handoff: Handoff,
        audit: AuditLog | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        # Keeps the messages and replies.
        self._store = store
        # Operators: a session one of them holds gets no reply from the agent.
        self._handoff = handoff
        # The way frames leave: to the session on every node, or to one connection.
        self._node = node
        # Produces the replies.
        self._agent = agent
        # Tells watching admins what is said.
        self._feed = feed
        # Counts replies and errors for the stats endpoint.
        self._counters = counters
        # Records each answer (ids, sizes, timings; never the text).
        self._audit = audit if audit is not None else AuditLog.disabled()
        # Times each reply and counts errors; handed to the agent for its own (an LLM's).
        self._metrics = metrics
        # session_id -> messages not yet answered, oldest first.
        self._queues: dict[str, deque[PendingMessage]] = {}
        # session_id -> its worker: a task, or a future that ends with a worker run by
        # a connection; at most one per session.
        self._workers: dict[str, asyncio.Future[None]] = {}
        # session_id -> the task of the connection running its worker (to cancel it).
        self._hosts: dict[str, asyncio.Task[Any]] = {}
        # Whether workers run in the connection that asked (see the module's doc).
        self._at_once = bool(getattr(agent, "answers_at_once", False))

    def waiting(self, session_id: str) -> int:
        """How many of the session's messages wait for a reply."""
        queue = self._queues.get(session_id)
        return len(queue) if queue is not None else 0

    def submit(self, message: PendingMessage) -> None:
        """Queue ``message``; the session's worker answers it after the earlier ones."""
        if self._queue(message):
            sid = message.session_id
            self._workers[sid] = asyncio.create_task(self._work(sid), name=f"replies:{sid}")

    def submit_here(self, message: PendingMessage) -> Coroutine[Any, Any, None] | None:
        """Like :meth:`submit`, but when the session needs a worker and the agent answers
        at once, return that worker for the caller (the connection) to await."""
        if not self._at_once:
            self.submit(message)
            return None
        if not self._queue(message):
            return None
        sid = message.session_id
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._workers[sid] = done
        return self._work(sid, done)

    def _queue(self, message: PendingMessage) -> bool:
        """Append ``message`` to its session's queue; whether the session needs a worker."""
        sid = message.session_id
        queue = self._queues.get(sid)
        if queue is None:  # not setdefault: that would build a deque for every message
            queue = self._queues[sid] = deque()
        queue.append(message)
        return sid not in self._workers

    async def finish(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for queued replies; cancel the rest.

        Returns how many session workers had to be cancelled.
        """
        workers = dict(self._workers)
        if not workers:
            return 0
        _, pending = await asyncio.wait(workers.values(), timeout=grace)
        for sid, worker in workers.items():
            if worker in pending:
                host = self._hosts.get(sid)
                (host or worker).cancel()
        return len(pending)

    async def _work(self, session_id: str, done: asyncio.Future[None] | None = None) -> None:
        """Answer the session's queue until it is empty (``done``: run by a connection,
        set when finished)."""
        if done is not None:
            self._hosts[session_id] = asyncio.current_task()  # type: ignore[assignment]
        queue = self._queues[session_id]
        message: PendingMessage | None = None
        try:
            while queue:
                message = queue.popleft()
                try:
                    await self._answer(message)
                except Exception as exc:  # never let one message stop the session's queue
                    failure = client_error(exc, session_id=session_id, request_type="chat_message")
                    await self._tell_session(message, failure)
                    if isinstance(exc, SessionNotFound):  # its tabs must start anew
                        self._node.close_session(
                            session_id, *session_gone(exc), only=message.incarnation
                        )
        finally:
            del self._workers[session_id]
            if done is not None:
                self._hosts.pop(session_id, None)
                done.set_result(None)
            if not queue:
                del self._queues[session_id]
            else:  # cancelled at shutdown: whoever waits must not wait forever
                for left in queue:
                    _resolve(left, ClientError(ErrorType.SHUTTING_DOWN, _RESTARTING))
            if message is not None:
                _resolve(message, ClientError(ErrorType.SHUTTING_DOWN, _RESTARTING))

    async def _answer(self, message: PendingMessage) -> None:
        turn = time.perf_counter()
        sid, now = message.session_id, utcnow()
        around = frames.user_message_around(sid, now, exclude=message.connection_id)
        added = await self._store.add_user_message(
            sid,
            # Not validated again: the content was, as the chat_message was parsed.
            stored_message(
                id=0,  # assigned by the store
                role="user",
                content=message.content,
                timestamp=now,
                user_id=message.user_id,
                client_message_id=message.client_message_id,
            ),
            announce=around,
            recent=self._agent.history_wanted,
            incarnation=message.incarnation,
        )
        user_message = added.message
        if added.reply_id is None:
            self._answer_resend(message, added)
            return
        if not added.published and not added.resent:  # made only if another tab receives it
            await self._node.to_session(
                sid,
                message.incarnation,
                lambda: around.wrap(user_message),
                exclude=message.connection_id,
            )
        await self._feed.user_message(
            sid,
            user_message.timestamp,
            message_id=user_message.id,
            user_id=user_message.user_id,
            content=user_message.content,
        )
        choice = reply_choice(added.hold, utcnow())
        if choice is ReplyChoice.HELD:  # the operator answers; the sender learns it is stored
            await self._release(sid, added.reply_id)
            self._node.to_connection(message.connection_id, around.wrap(user_message))
            return
        if choice is ReplyChoice.RESUME:
            assert added.hold is not None
            await self._handoff.resume(sid, message.incarnation, added.hold)
        started = time.perf_counter()
        try:
            reply = await self._agent.respond(
                AgentRequest(
                    session_id=sid,
                    user_id=message.user_id,
                    content=message.content,
                    history=added.recent,
                    verified_user=message.verified_user,
                    metrics=self._metrics,
                )
            )
            content = await self._stream(reply, message, added.reply_id, turn)
        except StorageUnavailable:
            await self._release(sid, added.reply_id)
            raise
        except Exception as exc:
            await self._release(sid, added.reply_id)
            # The type only: an agent's error text may quote the user's message.
            log.warning(
                "agent %s failed in session %s: %s", self._agent.name, sid, type(exc).__name__
            )
            failure = ClientError(
                ErrorType.AGENT_ERROR,
                "the assistant could not answer this message; please try again",
                request_type="chat_message",
            )
            await self._tell_session(message, failure, in_reply_to=user_message.id)
            return
        await self._store_reply(
            message, reply, content, added.reply_id, user_message.id, started, turn
        )
        if reply.handoff is not None:
            language = reply.metadata.get("language")
            await self._feed.handoff_requested(
                sid,
                utcnow(),
                message_id=added.reply_id,
                user_id=message.user_id,
                reason=reply.handoff,
                language=language if isinstance(language, str) else None,
            )
            # Kept in the store, so operators find it later (`sessions --waiting`).
            with contextlib.suppress(StorageUnavailable, SessionNotFound):
                await self._handoff.customer_asks(
                    sid, message.incarnation, message.user_id, reason=None
                )

    async def _release(self, session_id: str, reply_id: int) -> None:
        """Give up the reply's lease, so a resend of its message is answered again."""
        with contextlib.suppress(StorageUnavailable):
            await self._store.release(session_id, reply_id)

    async def _store_reply(
        self,
        message: PendingMessage,
        reply: AgentReply,
        content: str,
        reply_id: int,
        in_reply_to: int,
        started: float,
        turn: float,
    ) -> None:
        sid, now = message.session_id, utcnow()
        confidence = min(1.0, max(0.0, reply.confidence))
        metadata = {
            **reply.metadata,
            "processing_time": round(time.perf_counter() - started, 6),
            "agent": reply.agent,
        }
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
        )
        stored = stored_message(
            id=reply_id,
            role="assistant",
            content=content,
            timestamp=now,
            in_reply_to=in_reply_to,
            agent=reply.agent,
            confidence=confidence,
            metadata=metadata,
        )
        published = await self._store.add_reply(
            sid, stored, announce=frame, incarnation=message.incarnation
        )
        if not published:
            await self._node.to_session(sid, message.incarnation, frame)
        self._counters.replies_sent += 1
        self._metrics.reply_sent(self._agent.name, reply.agent, time.perf_counter() - turn)
        _resolve(message, stored)
        if self._audit.enabled:
            self._audit.record(
                "message_answered",
                session_id=sid,
                message_id=reply_id,
                in_reply_to=in_reply_to,
                chars=len(content),
                ms=round(1000 * metadata["processing_time"], 2),
                agent=self._agent.name,
                route=reply.agent,
            )
        await self._feed.done(
            sid,
            now,
            message_id=reply_id,
            in_reply_to=in_reply_to,
            agent=reply.agent,
            confidence=confidence,
            processing_time=metadata["processing_time"],
            content=content,
        )

    async def _stream(
        self, reply: AgentReply, message: PendingMessage, reply_id: int, turn: float
    ) -> str:
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
            index = len(parts)
            parts.append(delta)
            now = utcnow()
            sid = message.session_id
            frame = frames.chunk(sid, reply_id, index, delta, now)
            await self._node.to_session(sid, message.incarnation, frame)
            if not index:
                self._metrics.first_chunk(self._agent.name, time.perf_counter() - turn)
            await self._feed.chunk(sid, now, message_id=reply_id, index=index, delta=delta)
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
            _resolve(message, reply)
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
        _resolve(message, failure)

    async def _tell_session(
        self, message: PendingMessage, failure: ClientError, *, in_reply_to: int | None = None
    ) -> None:
        """Tell every tab of the session that a message failed (this node's, if the bus is down)."""
        self._counters.errors_sent += 1
        self._metrics.error_sent(failure.error_type)
        _resolve(message, failure)
        now = utcnow()
        sid = message.session_id
        frame = frames.error(failure, sid, now, in_reply_to, message.client_message_id)
        await self._node.to_session_or_here(sid, message.incarnation, frame)
        # The tabs were told; if the bus is down, admins elsewhere cannot be reached now.
        with contextlib.suppress(StorageUnavailable):
            await self._feed.error(sid, now, failure)


_RESTARTING = "the server is restarting; send it again (same client_message_id) later"


def _resolve(message: PendingMessage, outcome: StoredMessage | ClientError) -> None:
    """Tell whoever waits for ``message``'s reply (an HTTP chat request) how it went."""
    answer = message.answer
    if answer is None or answer.done():
        return
    if isinstance(outcome, ClientError):
        answer.set_exception(outcome)
    else:
        answer.set_result(outcome)
