"""The in-memory store: the default, for one server process.

A real implementation, not a test double: it keeps sessions with sliding
expiry, capped history and client-message deduplication, and is what the tests
and benchmarks run on unless they say otherwise. It publishes nothing itself
(it pairs with the in-process bus).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chatbuddy.engine.store import (
    DEDUP_WINDOW,
    LEASE_SECONDS,
    NOTES_LIMIT,
    OPERATOR_AGENT,
    AddedMessage,
    FrameAround,
    HoldOutcome,
    Reacted,
    Reaction,
    ReactionTally,
    Reader,
)
from chatbuddy.errors import SessionNotFound, SessionReplaced
from chatbuddy.records import Hold, Note, SessionRecord, StoredMessage, trusted, utcnow

#: A stored message as kept: its field values in StoredMessage's field order
#: (the id first). A tuple of strings, numbers, times and a small dict of them
#: is left alone by the garbage collector (it untracks them), where a model per
#: message would be scanned by every full collection: with 10,000 busy
#: sessions that scan took up to 0.9 s (docs/performance.md).
_Kept = tuple[Any, ...]
_FIELDS = tuple(StoredMessage.model_fields)


@dataclass(slots=True)
class _Session:
    # Slots, a list and no empty containers up front: most of the memory an idle
    # connection costs is its session (docs/performance.md).
    record: SessionRecord
    # Oldest first, in id order (a reply may be stored after a later message).
    history: list[_Kept] = field(default_factory=list)
    # The last id handed out; ids only grow.
    last_reserved_id: int = 0
    # client_message_id -> the id it was stored under, oldest first (bounded); made on
    # first use. Only strings and ints, so the collector untracks it too.
    seen: dict[str, int] | None = None
    # reply id -> when its lease ends: replies being produced; made on first use.
    leases: dict[int, datetime] | None = None
    # Internal notes, oldest first; made on first use.
    notes: list[Note] | None = None
    # message id -> the customer's reaction to that reply; made on first use.
    reactions: dict[int, str] | None = None


class MemoryStore:
    """Sessions and history in this process's memory."""

    name = "memory"

    def __init__(
        self,
        *,
        session_ttl: float,
        history_limit: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # Sliding expiry: a session lives this long after its last activity.
        self._ttl = timedelta(seconds=session_ttl)
        # Messages kept per session.
        self._history_limit = history_limit
        # How long a reply being produced holds its lease.
        self._lease_for = timedelta(seconds=LEASE_SECONDS)
        # Injected so that tests can move time instead of sleeping.
        self._clock = clock
        # session_id -> its state; the whole store. Kept in order of last activity
        # (a session moves to the end when active), so a page of the newest is read
        # from the end and the expired are all at the start.
        self._sessions: dict[str, _Session] = {}
        # (agent, route) -> [up, down]: reactions over every session there was.
        self._reactions: dict[tuple[str, str | None], list[int]] = {}

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to release: the sessions go with the process."""

    def ready(self) -> bool:
        return True

    # -- sessions -----------------------------------------------------------

    async def create_session(self, record: SessionRecord) -> bool:
        if self._live(record.session_id, self._clock()) is not None:
            return False
        self._sessions[record.session_id] = _Session(record=record)
        return True

    async def get_session(self, session_id: str) -> SessionRecord | None:
        session = self._live(session_id, self._clock())
        return None if session is None else session.record

    async def touch_session(
        self, session_id: str, *, connected: bool = False, incarnation: str | None = None
    ) -> SessionRecord:
        now = self._clock()
        session = self._require(session_id, now, incarnation)
        self._active(session, now)
        if connected:
            session.record.connected_at = now
        return session.record

    async def keep_alive(self, sessions: Sequence[tuple[str, str]]) -> list[tuple[str, bool]]:
        now = self._clock()
        gone: list[tuple[str, bool]] = []
        for session_id, incarnation in sessions:
            session = self._live(session_id, now)
            if session is None or session.record.incarnation != incarnation:
                gone.append((session_id, session is not None))
            else:
                self._active(session, now)
        return gone

    async def count_sessions(self) -> int:
        return len(self._sessions)

    async def list_sessions(self, *, offset: int, limit: int) -> tuple[list[SessionRecord], int]:
        """A page costs its offset and limit, not the number of sessions."""
        await self.sweep_expired()
        newest_first = reversed(self._sessions.values())
        page = [s.record for s in itertools.islice(newest_first, offset, offset + limit)]
        return page, len(self._sessions)

    async def export_page(
        self, *, after: str | None, limit: int, since: datetime | None = None
    ) -> tuple[list[SessionRecord], str | None]:
        deadline = self._clock() - self._ttl
        if since is not None:
            deadline = max(deadline, since)
        ids = (
            sid
            for sid, s in self._sessions.items()
            if (after is None or sid > after) and s.record.last_activity >= deadline
        )
        page = heapq.nsmallest(limit, ids)
        records = [self._sessions[sid].record for sid in page]
        return records, page[-1] if len(page) == limit else None

    async def sweep_expired(self) -> int:
        """The expired are at the start (activity order): it stops at the first live one."""
        deadline = self._clock() - self._ttl
        expired = list(
            itertools.takewhile(
                lambda sid: self._sessions[sid].record.last_activity < deadline,
                self._sessions,
            )
        )
        for sid in expired:
            del self._sessions[sid]
        return len(expired)

    async def erase(
        self, *, session_id: str | None = None, user_id: str | None = None
    ) -> list[tuple[str, str]]:
        if (session_id is None) == (user_id is None):
            raise ValueError("erase one session_id or one user_id")
        if session_id is not None:
            ids = [session_id] if session_id in self._sessions else []
        else:
            ids = [sid for sid, s in self._sessions.items() if s.record.user_id == user_id]
        return [(sid, self._sessions.pop(sid).record.incarnation) for sid in ids]

    # -- history ------------------------------------------------------------

    async def add_user_message(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: FrameAround | None = None,
        recent: int = 0,
        incarnation: str | None = None,
    ) -> AddedMessage:
        now = self._clock()
        session = self._require(session_id, now, incarnation)
        key = message.client_message_id
        if key is not None and session.seen is not None and key in session.seen:
            self._active(session, now)
            return self._resent(session, session.seen[key], message, now, recent)
        session.last_reserved_id += 2
        # Validated when it was made; only the id changes.
        stored = trusted(StoredMessage, {**message.__dict__, "id": session.last_reserved_id - 1})
        self._store(session, stored, now)
        if key is not None:
            seen = session.seen if session.seen is not None else {}
            session.seen = seen
            seen[key] = stored.id
            if len(seen) > DEDUP_WINDOW:
                del seen[next(iter(seen))]  # dicts keep insertion order: the oldest
        self._lease(session, session.last_reserved_id, now)
        earlier = session.history[-(recent + 1) : -1] if recent else ()
        return AddedMessage(
            stored,
            reply_id=session.last_reserved_id,
            recent=[_message(k) for k in earlier],
            hold=session.record.hold,
        )

    def _resent(
        self, session: _Session, message_id: int, message: StoredMessage, now: datetime, recent: int
    ) -> AddedMessage:
        """A resend of ``message_id``: its reply, or nothing (in progress), or a new lease."""
        original = self._stored(session, message_id, message)
        reply_id = message_id + 1
        reply = self._find(session, reply_id)
        hold = session.record.hold
        if reply is not None:
            return AddedMessage(original, reply_id=None, resent=True, reply=reply, hold=hold)
        leases = session.leases
        if leases is not None and leases.get(reply_id, now) > now:
            return AddedMessage(original, reply_id=None, resent=True, hold=hold)
        self._lease(session, reply_id, now)
        at = bisect.bisect_left(session.history, message_id, key=_kept_id)
        earlier = session.history[max(0, at - recent) : at] if recent else ()
        return AddedMessage(
            original,
            reply_id=reply_id,
            resent=True,
            recent=[_message(k) for k in earlier],
            hold=hold,
        )

    def _lease(self, session: _Session, reply_id: int, now: datetime) -> None:
        if session.leases is None:
            session.leases = {}
        session.leases[reply_id] = now + self._lease_for

    async def add_reply(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: str | None = None,
        incarnation: str | None = None,
    ) -> bool:
        now = self._clock()
        session = self._require(session_id, now, incarnation)
        self._store(session, message, now)
        if session.leases is not None:
            session.leases.pop(message.id, None)
        return False

    async def release(self, session_id: str, reply_id: int) -> None:
        session = self._live(session_id, self._clock())
        if session is not None and session.leases is not None:
            session.leases.pop(reply_id, None)

    async def history(
        self,
        session_id: str,
        *,
        after: int | None,
        limit: int,
        touch: bool = True,
        incarnation: str | None = None,
    ) -> tuple[list[StoredMessage], bool]:
        now = self._clock()
        session = self._require(session_id, now, incarnation)
        if touch:
            self._active(session, now)
        history = session.history
        if after is None:
            page, more = history[-limit:], False
        else:
            start = bisect.bisect(history, after, key=_kept_id)
            page, more = history[start : start + limit], len(history) > start + limit
        reactions = session.reactions
        if reactions:
            return [_message(kept, reactions.get(kept[0])) for kept in page], more
        return [_message(kept) for kept in page], more

    # -- hand-off to a person -----------------------------------------------------

    async def take_hold(
        self, session_id: str, operator: str, *, until: datetime, incarnation: str | None = None
    ) -> HoldOutcome:
        now = self._clock()
        record = self._require(session_id, now, incarnation).record
        held = record.hold
        if held is not None and held.live(now) and held.operator != operator:
            return HoldOutcome(taken=False, hold=held)
        renewed = held is not None and held.live(now) and held.operator == operator
        since = held.since if renewed and held is not None else now
        record.hold = Hold(operator=operator, since=since, until=until)
        record.waiting_since = None
        record.last_activity = now
        return HoldOutcome(taken=True, hold=record.hold, renewed=renewed)

    async def release_hold(
        self, session_id: str, operator: str | None = None, *, expired_only: bool = False
    ) -> Hold | None:
        now = self._clock()
        session = self._live(session_id, now)
        held = None if session is None else session.record.hold
        if session is None or held is None:
            return None
        if operator is not None and held.operator != operator:
            return None
        if expired_only and held.live(now):
            return None
        session.record.hold = None
        return held

    async def end_expired_holds(self) -> list[tuple[str, Hold]]:
        now = self._clock()
        ended = []
        for session_id, session in list(self._sessions.items()):
            held = session.record.hold
            if held is not None and not held.live(now):
                session.record.hold = None
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
        stored = trusted(StoredMessage, {**message.__dict__, "id": session.last_reserved_id})
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
        who, route = (
            (OPERATOR_AGENT, None) if message.role == "operator" else (agent, message.agent)
        )
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

    def _find(self, session: _Session, message_id: int) -> StoredMessage | None:
        history = session.history
        at = bisect.bisect_left(history, message_id, key=_kept_id)
        if at < len(history) and history[at][0] == message_id:
            return _message(history[at])
        return None

    def _stored(self, session: _Session, message_id: int, resent: StoredMessage) -> StoredMessage:
        """The message stored under ``message_id`` (a resend's original); if history
        has dropped it since, what was resent, under the original id."""
        found = self._find(session, message_id)
        return found if found is not None else resent.model_copy(update={"id": message_id})

    def _store(self, session: _Session, message: StoredMessage, now: datetime) -> None:
        history = session.history
        kept = tuple(message.__dict__.values())  # a model's values are in field order
        if not history or history[-1][0] < message.id:
            history.append(kept)
        else:  # a reply stored after a later message; keep id order
            history.insert(bisect.bisect(history, message.id, key=_kept_id), kept)
        if len(history) > self._history_limit:
            del history[: len(history) - self._history_limit]
        record = session.record
        record.message_count += 1
        record.last_message_id = history[-1][0]
        self._active(session, now)

    # -- helpers --------------------------------------------------------------

    def _active(self, session: _Session, now: datetime) -> None:
        """Activity: the session's new time, and its place at the end of the order."""
        record = session.record
        record.last_activity = now
        sessions = self._sessions
        sid = record.session_id
        if next(reversed(sessions)) != sid:
            del sessions[sid]
            sessions[sid] = session

    def _live(self, session_id: str, now: datetime) -> _Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.record.last_activity < now - self._ttl:
            del self._sessions[session_id]
            return None
        return session

    def _require(self, session_id: str, now: datetime, incarnation: str | None = None) -> _Session:
        session = self._live(session_id, now)
        if session is None:
            raise SessionNotFound(session_id)
        if incarnation is not None and session.record.incarnation != incarnation:
            raise SessionReplaced(session_id)
        return session


def _kept_id(kept: _Kept) -> int:
    id_: int = kept[0]
    return id_


def _message(kept: _Kept, reaction: str | None = None) -> StoredMessage:
    """The model again (its values were validated when it was first made), with the
    customer's reaction to it."""
    values = dict(zip(_FIELDS, kept, strict=True))
    if reaction is not None:
        values["reaction"] = reaction
    return trusted(StoredMessage, values)
