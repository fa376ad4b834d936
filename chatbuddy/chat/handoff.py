"""A person in the conversation: an operator takes a session over from the assistant,
talks to the customer, keeps internal notes, and gives it back.

The hold is the store's (an atomic lock with an expiry, the same on every node),
so two operators cannot hold one session and a hold taken through one node
silences the assistant on all of them. What a hold means for a customer's
message is :func:`reply_choice`, a pure function the reply pipeline asks; this
module carries out the rest and tells the customer's tabs (frames) and watching
operators (admin events). It knows nothing of Tornado or HTTP.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable
from datetime import datetime, timedelta

from chatbuddy.chat import frames
from chatbuddy.chat.feed import EventFeed
from chatbuddy.chat.node import LocalNode
from chatbuddy.engine import SessionStore
from chatbuddy.engine.store import HoldOutcome, Reaction
from chatbuddy.errors import (
    ClientError,
    ErrorType,
    HeldByAnother,
    NotHolding,
    SessionNotFound,
    StorageUnavailable,
)
from chatbuddy.records import Hold, Note, SessionRecord, StoredMessage, stored_message, utcnow
from chatbuddy.wire.events import (
    NoteEvent,
    OperatorJoinedEvent,
    OperatorLeftEvent,
    OperatorMessageEvent,
    ReactionEvent,
    ReadEvent,
    TypingEvent,
)
from chatbuddy.wire.server_frames import iso_time


class ReplyChoice(enum.Enum):
    """What becomes of a customer's message, given the hold it was stored under."""

    #: Nobody holds the session: the assistant answers.
    ANSWER = "answer"
    #: An operator holds it: the assistant is silent; the operator reads it.
    HELD = "held"
    #: A hold ran out and was not ended yet: end it (the customer is told), then answer.
    RESUME = "resume"


def reply_choice(hold: Hold | None, now: datetime) -> ReplyChoice:
    """Whether the assistant answers a message stored while ``hold`` was in force."""
    if hold is None:
        return ReplyChoice.ANSWER
    return ReplyChoice.HELD if hold.live(now) else ReplyChoice.RESUME


class Handoff:
    """Operators' actions on conversations, and what customers' pages hear of them."""

    def __init__(
        self,
        *,
        store: SessionStore,
        node: LocalNode,
        feed: EventFeed,
        grace: float,
        agent_name: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # Keeps holds, notes, reactions and read marks, and operators' messages.
        self._store = store
        # Frames to the customer's tabs leave through it (to every node).
        self._node = node
        # Tells watching operators what happens.
        self._feed = feed
        # How long a hold lasts after the operator's last sign of life.
        self._grace = timedelta(seconds=grace)
        # The agent whose replies reactions are counted under (this node's).
        self._agent_name = agent_name
        # Injected so that tests can move time.
        self._clock = clock

    @property
    def grace(self) -> float:
        return self._grace.total_seconds()

    # -- operators ------------------------------------------------------------------

    async def take(self, session_id: str, operator: str) -> HoldOutcome:
        """Hold the session for ``operator`` for the grace from now (taking it, or
        extending the hold); the customer hears the operator joined. HeldByAnother
        if another operator holds it."""
        return await self._take(await self._record(session_id), operator)

    async def say(self, session_id: str, operator: str, text: str) -> StoredMessage:
        """Say ``text`` to the customer as ``operator`` (taking the session over if not
        yet, and extending the hold); stored in history with role ``operator``."""
        record = await self._record(session_id)
        await self._take(record, operator)
        now = self._clock()
        around = frames.operator_message_around(session_id, now)
        message = stored_message(id=0, role="operator", content=text, timestamp=now, name=operator)
        incarnation = record.incarnation
        stored, published = await self._store.add_message(
            session_id, message, announce=around, incarnation=incarnation
        )
        if not published:
            await self._node.to_session(session_id, incarnation, around.wrap(stored))
        await self._feed.event(
            lambda: OperatorMessageEvent(
                session_id=session_id,
                timestamp=now,
                message_id=stored.id,
                operator=operator,
                content=stored.content,
            )
        )
        return stored

    async def release(self, session_id: str, operator: str | None) -> Hold | None:
        """Give the conversation back to the assistant (``operator`` None: whoever holds
        it); the hold that ended, or None if nobody held it. HeldByAnother if another
        operator holds it."""
        record = await self._record(session_id)
        ended = await self._store.release_hold(session_id, operator)
        if ended is None:
            held = record.hold
            if held is not None and held.live(self._clock()) and held.operator != operator:
                raise HeldByAnother(session_id, held.operator, iso_time(held.since))
            return None
        await self._left(session_id, record.incarnation, ended.operator, "released")
        return ended

    async def note(self, session_id: str, operator: str, text: str) -> Note:
        """Keep an internal note with the session: operators see it, the customer and
        the assistant never do."""
        await self._record(session_id)
        now = self._clock()
        note = Note(operator=operator, content=text, timestamp=now)
        await self._store.add_note(session_id, note)
        await self._feed.event(
            lambda: NoteEvent(session_id=session_id, timestamp=now, operator=operator, content=text)
        )
        return note

    async def typing(self, session_id: str, operator: str, on: bool) -> None:
        """The holder started or stopped typing: the customer's page says so."""
        record = await self._holder(session_id, operator)
        frame = frames.typing(session_id, operator, on, self._clock())
        await self._node.to_session(session_id, record.incarnation, frame)

    async def read(self, session_id: str, operator: str, message_id: int) -> int:
        """The holder has seen the conversation up to ``message_id``: the customer's page
        marks their messages read. The mark now (it never goes back)."""
        record = await self._holder(session_id, operator)
        mark = await self._store.mark_read(
            session_id, "operator", message_id, incarnation=record.incarnation
        )
        frame = frames.read(session_id, "operator", mark, self._clock(), operator)
        await self._node.to_session(session_id, record.incarnation, frame)
        return mark

    async def end_expired(self) -> int:
        """End the holds that ran out (on whichever node gets them first) and tell their
        customers the assistant is back; how many ended here."""
        ended = await self._store.end_expired_holds()
        for session_id, hold in ended:
            record = await self._store.get_session(session_id)
            if record is not None:
                with contextlib.suppress(StorageUnavailable):
                    await self._left(session_id, record.incarnation, hold.operator, "timeout")
        return len(ended)

    async def resume(self, session_id: str, incarnation: str, hold: Hold) -> None:
        """A customer wrote after ``hold`` ran out: end it (if no node did yet) and tell
        the customer the assistant is back, before it answers."""
        ended = await self._store.release_hold(session_id, hold.operator, expired_only=True)
        if ended is not None:
            await self._left(session_id, incarnation, ended.operator, "timeout")

    # -- customers --------------------------------------------------------------------

    def greet(self, session_id: str, record: SessionRecord, send: Callable[[str], object]) -> None:
        """What a newly opened tab must know: who holds the conversation, what the
        operator has read, whether the customer waits for a person."""
        now = self._clock()
        hold = record.hold
        if hold is not None and hold.live(now):
            send(frames.operator_joined(session_id, hold, now))
            if record.read_by_operator:
                send(
                    frames.read(session_id, "operator", record.read_by_operator, now, hold.operator)
                )
        elif record.waiting_since is not None:
            send(frames.handoff_pending(session_id, record.waiting_since, now))

    async def customer_typing(self, session_id: str, state: str) -> None:
        now = self._clock()
        await self._feed.event(
            lambda: TypingEvent(session_id=session_id, timestamp=now, state=state)
        )

    async def customer_read(self, session_id: str, incarnation: str, message_id: int) -> None:
        mark = await self._store.mark_read(
            session_id, "customer", message_id, incarnation=incarnation
        )
        now = self._clock()
        await self._feed.event(
            lambda: ReadEvent(session_id=session_id, timestamp=now, message_id=mark)
        )

    async def customer_reaction(
        self,
        session_id: str,
        incarnation: str,
        connection_id: str,
        message_id: int,
        reaction: Reaction | None,
    ) -> None:
        """The customer's 👍/👎 on a reply: stored with it, shown in their other tabs."""
        reacted = await self._store.react(
            session_id, message_id, reaction, agent=self._agent_name, incarnation=incarnation
        )
        if reacted is None:
            raise ClientError(
                ErrorType.VALIDATION_ERROR,
                f"message {message_id} is not a reply in this session",
                request_type="reaction",
            )
        now = self._clock()
        frame = frames.reaction(session_id, message_id, reaction, now)
        await self._node.to_session(session_id, incarnation, frame, exclude=connection_id)
        await self._feed.event(
            lambda: ReactionEvent(
                session_id=session_id,
                timestamp=now,
                message_id=message_id,
                reaction=reaction,
                agent=reacted.agent,
                route=reacted.route,
            )
        )

    async def customer_asks(
        self, session_id: str, incarnation: str, user_id: str | None, *, reason: str | None
    ) -> bool:
        """The customer asked for a person (the page's button, or the assistant heard
        them ask): they wait until an operator takes the conversation. Their tabs hear
        since when they wait (or who holds it already); with a ``reason``, watching
        operators are told. Whether the request is new."""
        asked = await self._store.request_handoff(session_id, incarnation=incarnation)
        now = self._clock()
        if asked and reason is not None:
            await self._feed.handoff_requested(
                session_id, now, message_id=None, user_id=user_id, reason=reason, language=None
            )
        record = await self._store.get_session(session_id)
        if record is None:
            raise SessionNotFound(session_id)
        hold = record.hold
        if hold is not None and hold.live(now):
            frame = frames.operator_joined(session_id, hold, now)
        elif record.waiting_since is not None:
            frame = frames.handoff_pending(session_id, record.waiting_since, now)
        else:
            return asked
        await self._node.to_session(session_id, incarnation, frame)
        return asked

    # -- inside -------------------------------------------------------------------------

    async def _record(self, session_id: str) -> SessionRecord:
        record = await self._store.get_session(session_id)
        if record is None:
            raise SessionNotFound(session_id)
        return record

    async def _holder(self, session_id: str, operator: str) -> SessionRecord:
        record = await self._record(session_id)
        hold = record.hold
        if hold is None or not hold.live(self._clock()):
            raise NotHolding(session_id, operator)
        if hold.operator != operator:
            raise HeldByAnother(session_id, hold.operator, iso_time(hold.since))
        return record

    async def _take(self, record: SessionRecord, operator: str) -> HoldOutcome:
        session_id = record.session_id
        outcome = await self._store.take_hold(
            session_id,
            operator,
            until=self._clock() + self._grace,
            incarnation=record.incarnation,
        )
        hold = outcome.hold
        if not outcome.taken:
            raise HeldByAnother(session_id, hold.operator, iso_time(hold.since))
        if not outcome.renewed:
            now = self._clock()
            await self._node.to_session(
                session_id, record.incarnation, frames.operator_joined(session_id, hold, now)
            )
            await self._feed.event(
                lambda: OperatorJoinedEvent(session_id=session_id, timestamp=now, operator=operator)
            )
        return outcome

    async def _left(self, session_id: str, incarnation: str, operator: str, reason: str) -> None:
        now = self._clock()
        frame = frames.operator_left(session_id, operator, reason, now)
        await self._node.to_session(session_id, incarnation, frame)
        await self._feed.event(
            lambda: OperatorLeftEvent(
                session_id=session_id, timestamp=now, operator=operator, reason=reason
            )
        )
