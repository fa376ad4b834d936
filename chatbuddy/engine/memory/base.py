"""The memory store's state: the sessions kept, and how a message is kept.

``StoreBase`` holds the sessions (in order of last activity) and the reaction
totals, and stores and finds messages; ``handoff_store.py`` adds the hand-off to
a person on top of it, and ``store.py`` sessions and history: ``MemoryStore``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chatbuddy.engine.store import LEASE_SECONDS
from chatbuddy.errors import SessionNotFound, SessionReplaced
from chatbuddy.records import Note, SessionRecord, StoredMessage, trusted, utcnow

#: A stored message as kept: its field values in StoredMessage's field order
#: (the id first). A tuple of strings, numbers, times and a small dict of them
#: is left alone by the garbage collector (it untracks them), where a model per
#: message would be scanned by every full collection: with 10,000 busy
#: sessions that scan took up to 0.9 s (docs/performance.md).
Kept = tuple[Any, ...]
_FIELDS = tuple(StoredMessage.model_fields)


@dataclass(slots=True)
class Session:
    # Slots, a list and no empty containers up front: most of the memory an idle
    # connection costs is its session (docs/performance.md).
    record: SessionRecord
    # Oldest first, in id order (a reply may be stored after a later message).
    history: list[Kept] = field(default_factory=list)
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


class StoreBase:
    """The state and the helpers the parts of :class:`MemoryStore` share."""

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
        self._sessions: dict[str, Session] = {}
        # (agent, route) -> [up, down]: reactions over every session there was.
        self._reactions: dict[tuple[str, str | None], list[int]] = {}
        # Sessions an operator took (and maybe released, or that are gone since): what
        # the once-a-second look for holds that ran out looks at, not every session.
        self._held: set[str] = set()

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to release: the sessions go with the process."""

    def ready(self) -> bool:
        return True

    def _find(self, session: Session, message_id: int) -> StoredMessage | None:
        history = session.history
        at = bisect.bisect_left(history, message_id, key=kept_id)
        if at < len(history) and history[at][0] == message_id:
            return message_of(history[at])
        return None

    def _stored(self, session: Session, message_id: int, resent: StoredMessage) -> StoredMessage:
        """The message stored under ``message_id`` (a resend's original); if history
        has dropped it since, what was resent, under the original id."""
        found = self._find(session, message_id)
        return found if found is not None else resent.model_copy(update={"id": message_id})

    def _store(self, session: Session, message: StoredMessage, now: datetime) -> None:
        history = session.history
        kept = tuple(message.__dict__.values())  # a model's values are in field order
        if not history or history[-1][0] < message.id:
            history.append(kept)
        else:  # a reply stored after a later message; keep id order
            history.insert(bisect.bisect(history, message.id, key=kept_id), kept)
        if len(history) > self._history_limit:
            del history[: len(history) - self._history_limit]
        record = session.record
        record.message_count += 1
        record.last_message_id = history[-1][0]
        self._active(session, now)

    # -- helpers --------------------------------------------------------------

    def _active(self, session: Session, now: datetime) -> None:
        """Activity: the session's new time, and its place at the end of the order."""
        record = session.record
        record.last_activity = now
        sessions = self._sessions
        sid = record.session_id
        if next(reversed(sessions)) != sid:
            del sessions[sid]
            sessions[sid] = session

    def _live(self, session_id: str, now: datetime) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.record.last_activity < now - self._ttl:
            del self._sessions[session_id]
            return None
        return session

    def _require(self, session_id: str, now: datetime, incarnation: str | None = None) -> Session:
        session = self._live(session_id, now)
        if session is None:
            raise SessionNotFound(session_id)
        if incarnation is not None and session.record.incarnation != incarnation:
            raise SessionReplaced(session_id)
        return session


def kept_id(kept: Kept) -> int:
    id_: int = kept[0]
    return id_


def message_of(kept: Kept, reaction: str | None = None) -> StoredMessage:
    """The model again (its values were validated when it was first made), with the
    customer's reaction to it."""
    values = dict(zip(_FIELDS, kept, strict=True))
    if reaction is not None:
        values["reaction"] = reaction
    return trusted(StoredMessage, values)
