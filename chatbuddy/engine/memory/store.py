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
from collections.abc import Sequence
from datetime import datetime

from chatbuddy.engine.memory.base import Session, kept_id, message_of
from chatbuddy.engine.memory.handoff_store import HandoffStore
from chatbuddy.engine.store import DEDUP_WINDOW, AddedMessage, FrameAround
from chatbuddy.records import SessionRecord, StoredMessage, renumbered


class MemoryStore(HandoffStore):
    """Sessions and history in this process's memory.

    Sessions and history here; the state and how a message is kept in
    ``base.py``, the hand-off to a person in ``handoff_store.py``.
    """

    name = "memory"

    # -- sessions -----------------------------------------------------------

    async def create_session(self, record: SessionRecord) -> bool:
        if self._live(record.session_id, self._clock()) is not None:
            return False
        self._sessions[record.session_id] = Session(record=record)
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
        defer: bool = False,  # stored at once: nothing to defer
    ) -> AddedMessage:
        now = self._clock()
        session = self._require(session_id, now, incarnation)
        key = message.client_message_id
        if key is not None and session.seen is not None and key in session.seen:
            self._active(session, now)
            return self._resent(session, session.seen[key], message, now, recent)
        session.last_reserved_id += 2
        stored = renumbered(message, session.last_reserved_id - 1)
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
            recent=[message_of(k) for k in earlier],
            hold=session.record.hold,
        )

    def _resent(
        self, session: Session, message_id: int, message: StoredMessage, now: datetime, recent: int
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
        at = bisect.bisect_left(session.history, message_id, key=kept_id)
        earlier = session.history[max(0, at - recent) : at] if recent else ()
        return AddedMessage(
            original,
            reply_id=reply_id,
            resent=True,
            recent=[message_of(k) for k in earlier],
            hold=hold,
        )

    def _lease(self, session: Session, reply_id: int, now: datetime) -> None:
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
            start = bisect.bisect(history, after, key=kept_id)
            page, more = history[start : start + limit], len(history) > start + limit
        reactions = session.reactions
        if reactions:
            return [message_of(kept, reactions.get(kept[0])) for kept in page], more
        return [message_of(kept) for kept in page], more
