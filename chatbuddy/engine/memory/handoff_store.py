"""The memory store's hand-off to a person: holds, the waiting list, operator
messages, notes, reactions and read marks, kept on the sessions in memory.
"""

from __future__ import annotations

from datetime import datetime

from chatbuddy.engine import handoff_rules
from chatbuddy.engine.memory.base import StoreBase
from chatbuddy.engine.store import (
    NOTES_LIMIT,
    FrameAround,
    HoldOutcome,
    Reacted,
    Reaction,
    ReactionTally,
    Reader,
)
from chatbuddy.records import Hold, Note, SessionRecord, StoredMessage, renumbered


class HandoffStore(StoreBase):
    """The hand-off methods of :class:`chatbuddy.engine.memory.MemoryStore`."""

    async def take_hold(
        self, session_id: str, operator: str, *, until: datetime, incarnation: str | None = None
    ) -> HoldOutcome:
        now = self._clock()
        record = self._require(session_id, now, incarnation).record
        outcome = handoff_rules.take(record, operator, now=now, until=until)
        if outcome.taken:
            self._held.add(session_id)
        return outcome

    async def release_hold(
        self, session_id: str, operator: str | None = None, *, expired_only: bool = False
    ) -> Hold | None:
        now = self._clock()
        session = self._live(session_id, now)
        held = None if session is None else session.record.hold
        if session is None or not handoff_rules.releasable(
            held, operator, now=now, expired_only=expired_only
        ):
            return None
        session.record.hold = None
        return held

    async def end_expired_holds(self) -> list[tuple[str, Hold]]:
        now = self._clock()
        ended = []
        for session_id in list(self._held):
            session = self._sessions.get(session_id)
            held = None if session is None else session.record.hold
            if session is None or held is None:  # released, or the session is gone
                self._held.discard(session_id)
            elif not held.live(now):
                session.record.hold = None
                self._held.discard(session_id)
                ended.append((session_id, held))
        return ended

    async def request_handoff(self, session_id: str, *, incarnation: str | None = None) -> bool:
        now = self._clock()
        record = self._require(session_id, now, incarnation).record
        record.last_activity = now
        if (record.hold is not None and record.hold.live(now)) or record.waiting_since:
            return False
        record.waiting_since = now
        return True

    async def waiting(self, *, limit: int) -> list[SessionRecord]:
        now = self._clock()
        deadline = now - self._ttl
        found = [
            s.record
            for s in self._sessions.values()
            if s.record.waiting_since is not None
            and s.record.last_activity >= deadline
            and not (s.record.hold is not None and s.record.hold.live(now))
        ]
        found.sort(key=lambda record: record.waiting_since or now)
        return found[:limit]

    async def add_message(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: FrameAround | None = None,
        incarnation: str | None = None,
    ) -> tuple[StoredMessage, bool]:
        now = self._clock()
        session = self._require(session_id, now, incarnation)
        session.last_reserved_id += 1
        stored = renumbered(message, session.last_reserved_id)
        self._store(session, stored, now)
        return stored, False

    async def add_note(self, session_id: str, note: Note) -> None:
        now = self._clock()
        session = self._require(session_id, now)
        if session.notes is None:
            session.notes = []
        session.notes.append(note)
        del session.notes[:-NOTES_LIMIT]

    async def notes(self, session_id: str) -> list[Note]:
        session = self._require(session_id, self._clock())
        return list(session.notes or ())

    async def react(
        self,
        session_id: str,
        message_id: int,
        reaction: Reaction | None,
        *,
        agent: str,
        incarnation: str | None = None,
    ) -> Reacted | None:
        now = self._clock()
        session = self._require(session_id, now, incarnation)
        message = self._find(session, message_id)
        if message is None or message.role == "user":
            return None
        session.record.last_activity = now
        reactions = session.reactions if session.reactions is not None else {}
        session.reactions = reactions
        before = reactions.get(message_id)
        if reaction is None:
            reactions.pop(message_id, None)
        else:
            reactions[message_id] = reaction
        who, route = handoff_rules.counted_under(message.role, agent, message.agent)
        tally = self._reactions.setdefault((who, route), [0, 0])
        for value, step in ((before, -1), (reaction, 1)):
            if value is not None:
                tally[0 if value == "up" else 1] += step
        return Reacted(message_id, before, reaction, who, route)

    async def reaction_totals(self) -> list[ReactionTally]:
        return [
            ReactionTally(agent, route, up, down)
            for (agent, route), (up, down) in sorted(
                self._reactions.items(), key=lambda item: (item[0][0], item[0][1] or "")
            )
            if up or down
        ]

    async def mark_read(
        self, session_id: str, reader: Reader, message_id: int, *, incarnation: str | None = None
    ) -> int:
        now = self._clock()
        record = self._require(session_id, now, incarnation).record
        record.last_activity = now
        if reader == "customer":
            record.read_by_customer = max(record.read_by_customer, message_id)
            return record.read_by_customer
        record.read_by_operator = max(record.read_by_operator, message_id)
        return record.read_by_operator
