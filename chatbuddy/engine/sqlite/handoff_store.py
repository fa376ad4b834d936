"""The SQLite store's hand-off to a person: holds, the waiting list, operator
messages, notes, reactions and read marks.

Decided on the event loop from the session in memory (one process holds the
file, so a check and its change are atomic), written before the call returns;
the rows and the writer-thread functions are in ``handoff.py``.
"""

from __future__ import annotations

import functools
from datetime import datetime

from chatbuddy.engine import handoff_rules
from chatbuddy.engine.sqlite import handoff, rows
from chatbuddy.engine.sqlite.base import MESSAGE_BY_ID, StoreBase
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
    """The hand-off methods of :class:`chatbuddy.engine.sqlite.SQLiteStore`."""

    async def take_hold(
        self, session_id: str, operator: str, *, until: datetime, incarnation: str | None = None
    ) -> HoldOutcome:
        now = self._clock()
        live = self._entry(session_id, incarnation)
        outcome = handoff_rules.take(live.record, operator, now=now, until=until)
        if outcome.taken:
            self._changed(live)
            await self._put_handoff(live.record)
        return outcome

    async def release_hold(
        self, session_id: str, operator: str | None = None, *, expired_only: bool = False
    ) -> Hold | None:
        now = self._clock()
        live = self._live.get(session_id) or self._load(session_id)
        held = None if live is None else live.record.hold
        if live is None or not handoff_rules.releasable(
            held, operator, now=now, expired_only=expired_only
        ):
            return None
        live.record.hold = None
        await self._put_handoff(live.record)
        return held

    async def end_expired_holds(self) -> list[tuple[str, Hold]]:
        await self._settled()
        now = self._clock()
        ended = []
        for (session_id,) in self._query(handoff.EXPIRED_HOLDS, (now.timestamp(),)):
            live = self._live.get(session_id) or self._load(session_id)
            held = None if live is None else live.record.hold
            if live is None or held is None or held.live(now):
                continue  # renewed in memory meanwhile
            live.record.hold = None
            await self._put_handoff(live.record)
            ended.append((session_id, held))
        return ended

    async def request_handoff(self, session_id: str, *, incarnation: str | None = None) -> bool:
        now = self._clock()
        live = self._entry(session_id, incarnation)
        record = live.record
        record.last_activity = now
        self._changed(live)
        if (record.hold is not None and record.hold.live(now)) or record.waiting_since:
            return False
        record.waiting_since = now
        await self._put_handoff(record)
        return True

    async def waiting(self, *, limit: int) -> list[SessionRecord]:
        await self._settled()
        now = self._clock()
        since = (now - self._ttl).timestamp()
        found = self._query(handoff.WAITING, (since, now.timestamp(), limit))
        records = [await self.get_session(sid) for (sid,) in found]
        return [record for record in records if record is not None]

    async def add_message(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: FrameAround | None = None,
        incarnation: str | None = None,
    ) -> tuple[StoredMessage, bool]:
        now = self._clock()
        live = self._entry(session_id, incarnation)
        live.seq += 1
        stored = renumbered(message, live.seq)
        self._batch.messages.append((session_id, stored.id, stored.model_dump_json()))
        self._count(live, stored.id, now)
        await self._committed()
        return stored, False

    async def add_note(self, session_id: str, note: Note) -> None:
        self._entry(session_id)
        await self._write(functools.partial(handoff.add_note, session_id, note, NOTES_LIMIT))

    async def notes(self, session_id: str) -> list[Note]:
        self._entry(session_id)
        await self._settled()
        return [
            Note(operator=operator, content=content, timestamp=rows.moment(at))
            for operator, content, at in self._query(handoff.NOTES, (session_id,))
        ]

    async def react(
        self,
        session_id: str,
        message_id: int,
        reaction: Reaction | None,
        *,
        agent: str,
        incarnation: str | None = None,
    ) -> Reacted | None:
        """The reaction is kept in the message's row (history returns it as stored)."""
        now = self._clock()
        live = self._entry(session_id, incarnation)
        await self._settled()  # the reply may be in the transaction being written
        found = self._query(MESSAGE_BY_ID, (session_id, message_id))
        message = rows.message_of(found[0][0]) if found else None
        if message is None or message.role == "user":
            return None
        live.record.last_activity = now
        self._changed(live)
        before = message.reaction
        changed = message.model_copy(update={"reaction": reaction})
        who, route = handoff_rules.counted_under(message.role, agent, message.agent)
        up = (reaction == "up") - (before == "up")
        down = (reaction == "down") - (before == "down")
        # The reaction and the totals it changes in one transaction: both or neither.
        self._batch.messages.append((session_id, message_id, changed.model_dump_json()))
        if up or down:
            self._batch.tallies.append((who, route or "", up, down))
        await self._committed()
        return Reacted(message_id, before, reaction, who, route)

    async def reaction_totals(self) -> list[ReactionTally]:
        await self._settled()
        return [
            ReactionTally(agent, route or None, up, down)
            for agent, route, up, down in self._query(handoff.TOTALS, ())
        ]

    async def mark_read(
        self, session_id: str, reader: Reader, message_id: int, *, incarnation: str | None = None
    ) -> int:
        now = self._clock()
        live = self._entry(session_id, incarnation)
        record = live.record
        record.last_activity = now
        self._changed(live)
        if reader == "customer":
            mark = record.read_by_customer = max(record.read_by_customer, message_id)
        else:
            mark = record.read_by_operator = max(record.read_by_operator, message_id)
        await self._put_handoff(record)
        return mark

    async def _put_handoff(self, record: SessionRecord) -> None:
        await self._write(functools.partial(handoff.put_handoff, handoff.handoff_row(record)))
