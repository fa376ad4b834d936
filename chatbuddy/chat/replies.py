"""Answering chat messages: in order, one at a time per session, nothing lost.

Each session with work has one worker that drains its queue: a task of its own,
or, for an agent that ``answers_at_once``, the connection whose message started
it (no task per message; a tenth fewer instructions per echoed message). The reply is
stored and published to the session, not to the connection that asked, so a
client that disconnects mid-reply finds it in ``history`` later, and a second
tab of the same session sees it as it streams.

How a reply leaves (streamed, stored, published; errors) is in
:mod:`chatbuddy.chat.reply_output`; how it ended, for an HTTP chat request waiting
on it, in :mod:`chatbuddy.chat.reply_outcomes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from chatbuddy.agents import Agent, AgentRequest
from chatbuddy.audit import AuditLog
from chatbuddy.chat import frames
from chatbuddy.chat.counters import Counters
from chatbuddy.chat.failures import client_error, session_gone
from chatbuddy.chat.feed import EventFeed
from chatbuddy.chat.handoff import Handoff, ReplyChoice, reply_choice
from chatbuddy.chat.node import LocalNode
from chatbuddy.chat.reply_outcomes import abandon, agent_failure
from chatbuddy.chat.reply_output import ReplyOutput, Stopped, Writing
from chatbuddy.chat.rules import PendingMessage, StopReply
from chatbuddy.engine import AddedMessage, FrameAround, SessionStore
from chatbuddy.errors import (
    SessionNotFound,
    StorageUnavailable,
)
from chatbuddy.metrics import NO_METRICS, Metrics
from chatbuddy.records import stored_message, utcnow


class ReplyPipeline(ReplyOutput):
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
        super().__init__(
            store=store,
            node=node,
            agent=agent,
            feed=feed,
            counters=counters,
            audit=audit if audit is not None else AuditLog.disabled(),
            metrics=metrics,
        )
        # Operators: a session one of them holds gets no reply from the agent.
        self._handoff = handoff
        # session_id -> messages not yet answered, oldest first.
        self._queues: dict[str, deque[PendingMessage]] = {}
        # session_id -> its worker: a task, or a future that ends with a worker run by
        # a connection; at most one per session.
        self._workers: dict[str, asyncio.Future[None]] = {}
        # session_id -> the task of the connection running its worker (to cancel it).
        self._hosts: dict[str, asyncio.Task[Any]] = {}
        # Whether workers run in the connection that asked (see the module's doc).
        self._at_once = bool(getattr(agent, "answers_at_once", False))
        # session_id -> the reply its worker is producing, for stops.
        self._writing: dict[str, Writing] = {}

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

    def stop(self, stop: StopReply) -> bool:
        """Stop the reply ``stop`` names if this node produces it or has its message
        queued; False when it is not here (another node's, or already finished)."""
        sid = stop.session_id
        writing = self._writing.get(sid)
        if writing is not None and writing.incarnation == stop.incarnation and not writing.stopped:
            by_id = stop.message_id is not None and stop.message_id == writing.reply_id
            by_client = (
                stop.client_message_id is not None
                and stop.client_message_id == writing.client_message_id
            )
            if by_id or by_client:
                writing.stopped = True
                if writing.task is not None:
                    writing.task.cancel()
                return True
        queue = self._queues.get(sid)
        if queue is not None and stop.client_message_id is not None:
            for index, waiting in enumerate(queue):
                if (
                    waiting.client_message_id == stop.client_message_id
                    and waiting.incarnation == stop.incarnation
                    and not waiting.cancelled
                ):
                    queue[index] = dataclasses.replace(waiting, cancelled=True)
                    return True
        return False

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
            # The loop given: looking it up costs a getpid() system call on Python 3.11.
            self._hosts[session_id] = asyncio.current_task(done.get_loop())  # type: ignore[assignment]
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
                    abandon(left)
            if message is not None:
                abandon(message)

    async def _answer(self, message: PendingMessage) -> None:
        turn = time.perf_counter()
        sid, now = message.session_id, utcnow()
        cid = message.connection_id
        sole = self._node.sole_tab(sid, cid)
        around = frames.user_message_around(sid, now, exclude=cid, sole_tab=sole)
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
            # An agent that answers at once replies in this turn: its reply tells the
            # sender the message is stored, so the two may be committed together.
            defer=self._at_once,
        )
        if added.reply_id is None:
            self._answer_resend(message, added)
            return
        # Told now, or (deferred: not stored yet) before anything of the reply leaves.
        untold = None
        if added.stored is None:
            await self._tell_others(message, added, around)
        else:
            untold = functools.partial(self._tell_others, message, added, around)
        # Most sessions are held by nobody: no clock to read for them.
        choice = ReplyChoice.ANSWER if added.hold is None else reply_choice(added.hold, utcnow())
        if choice is ReplyChoice.HELD:  # the operator answers; the sender learns it is stored
            if untold is not None:
                await untold()
            await self._release(sid, added.reply_id)
            self._node.to_connection(message.connection_id, around.wrap(added.message))
            return
        if choice is ReplyChoice.RESUME:
            assert added.hold is not None
            await self._handoff.resume(sid, message.incarnation, added.hold)
        writing = self._writing[sid] = Writing(
            message.client_message_id,
            message.incarnation,
            reply_id=added.reply_id,
            stopped=message.cancelled,
            untold=untold,
        )
        try:
            await self._produce(message, added, writing, added.message.id, turn)
        finally:
            del self._writing[sid]

    async def _tell_others(
        self, message: PendingMessage, added: AddedMessage, around: FrameAround
    ) -> None:
        """Once the message is stored: tell the session's other tabs, and watching
        admins, what was said."""
        if added.stored is not None:
            await added.stored()
        sid, user_message = message.session_id, added.message
        # One node and no other tab of the session on it: nobody else to tell.
        listened = not around.sole_tab or not self._node.alone
        if listened and not added.published and not added.resent:
            await self._node.to_session(  # the frame is made only if another tab gets it
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

    async def _produce(
        self,
        message: PendingMessage,
        added: AddedMessage,
        writing: Writing,
        asked: int,
        turn: float,
    ) -> None:
        """Run the agent and stream its reply; store the reply (what was written, for a
        stopped one) or tell the session why not."""
        sid, reply_id = message.session_id, added.reply_id
        assert reply_id is not None
        started = time.perf_counter()
        if writing.stopped:  # cancelled while it waited: nothing to ask the agent
            await self._store_reply(
                message, writing, None, "", asked, started, turn, cancelled=True
            )
            return
        try:
            if self._at_once:
                # Nothing to wait on, so no task of its own (see the module's doc): a stop
                # can only land while a chunk is published; _stream honours it before the next.
                content: str | None = await self._run_agent(message, added, writing, asked, turn)
            else:
                content = await self._in_task(message, added, writing, asked, turn)
        except Stopped:
            content = None
        except asyncio.CancelledError:
            raise
        except Exception as failed:  # the agent's failure, told to the session below
            await self._release(sid, reply_id)
            if isinstance(failed, StorageUnavailable):
                raise
            await self._told(writing)
            failure = agent_failure(self._agent.name, sid, failed)
            await self._tell_session(message, failure, in_reply_to=asked)
            return
        if content is None:
            content = "".join(writing.parts)
            await self._store_reply(
                message, writing, writing.reply, content, asked, started, turn, cancelled=True
            )
            return
        reply = writing.reply
        assert reply is not None
        await self._store_reply(message, writing, reply, content, asked, started, turn)
        if reply.handoff is not None:
            language = reply.metadata.get("language")
            await self._feed.handoff_requested(
                sid,
                utcnow(),
                message_id=reply_id,
                user_id=message.user_id,
                reason=reply.handoff,
                language=language if isinstance(language, str) else None,
            )
            # Kept in the store, so operators find it later (`sessions --waiting`).
            with contextlib.suppress(StorageUnavailable, SessionNotFound):
                await self._handoff.customer_asks(
                    sid, message.incarnation, message.user_id, reason=None
                )

    async def _in_task(
        self,
        message: PendingMessage,
        added: AddedMessage,
        writing: Writing,
        asked: int,
        turn: float,
    ) -> str | None:
        """Run the agent in a task of its own, which a stop cancels wherever the agent
        waits (a model); its text, or None when a stop cut it short (what was written is
        in ``writing.parts``). Raises what the agent raised."""
        writing.task = asyncio.create_task(
            self._run_agent(message, added, writing, asked, turn),
            name=f"reply:{message.session_id}",
        )
        try:
            await asyncio.wait([writing.task])
        except asyncio.CancelledError:  # the worker itself is cancelled (shutdown)
            writing.task.cancel()
            raise
        if writing.task.cancelled():
            return None
        return writing.task.result()

    async def _run_agent(
        self,
        message: PendingMessage,
        added: AddedMessage,
        writing: Writing,
        asked: int,
        turn: float,
    ) -> str:
        reply = writing.reply = await self._agent.respond(
            AgentRequest(
                session_id=message.session_id,
                user_id=message.user_id,
                content=message.content,
                history=added.recent,
                verified_user=message.verified_user,
                metrics=self._metrics,
            )
        )
        assert added.reply_id is not None
        return await self._stream(reply, message, added.reply_id, asked, writing, turn)
