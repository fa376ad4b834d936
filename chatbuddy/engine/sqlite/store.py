"""The SQLite store: sessions and history in one file that survives restarts and crashes.

What is acknowledged is on disk: a message, a reply or a new session is
written, in WAL mode, by the one writer thread (``writer.py``), and the call
that stores it returns only once its transaction has committed (so the echo or
reply that acknowledges it is sent after that). Writes made while the writer
is busy share the next transaction (group commit, ``batch.py``).

The event loop decides everything a write needs, as the memory store does,
from what it keeps of the sessions it uses (``batch.Live``: the record, the last
id handed out, the dedup window), so the writer thread only writes rows. Reads
(history, listing, a session not in memory yet) run on the event loop on a
second, read-only connection; WAL lets them run beside the writer, and each is
an indexed look-up of at most one page. docs/storage.md has the whole story.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from datetime import datetime

from chatbuddy.engine.sqlite import rows
from chatbuddy.engine.sqlite.base import MESSAGE_BY_ID, checked
from chatbuddy.engine.sqlite.batch import Batch, Live, checkpoint
from chatbuddy.engine.sqlite.handoff_store import HandoffStore
from chatbuddy.engine.store import DEDUP_WINDOW, AddedMessage, FrameAround
from chatbuddy.errors import StorageUnavailable
from chatbuddy.records import SessionRecord, StoredMessage, renumbered

log = logging.getLogger(__name__)

#: Client message ids remembered beyond DEDUP_WINDOW before the oldest are dropped
#: (dropping them in bulk keeps the per-message work constant).
SEEN_SLACK = 100
#: Sessions removed per retention transaction: small, so that the commits of
#: chat messages queued behind it wait only briefly.
RETENTION_BATCH = 20
#: Seconds a count of live sessions is reused (plus the sessions created since):
#: counting 100,000 in the index takes 2-3 ms, too much for every new session.
COUNT_EVERY = 1.0
#: No session id sorts before this (ids are 1..128 visible ASCII characters).
_BEFORE_ALL = ""


class SQLiteStore(HandoffStore):
    """A :class:`chatbuddy.engine.store.SessionStore` in one SQLite file, for one process.

    Sessions and history here; the shared state, lifecycle and group commit in
    ``base.py``, the hand-off to a person in ``handoff_store.py``.
    """

    name = "sqlite"

    # -- sessions -------------------------------------------------------------

    async def create_session(self, record: SessionRecord) -> bool:
        """False while the file keeps a session of that id (live or not: it can be
        resumed), or one is being erased; an erasure or retention removes a session
        with its history and dedup state in one transaction, so a new one never
        inherits them."""
        sid = record.session_id
        if sid in self._live or sid in self._erasing or self._read_session(sid) is not None:
            return False
        live = Live(record, seq=0, kept=0, seen_complete=True)
        self._live[sid] = live
        self._batch.created.append(rows.session_row(record, 0))
        await self._committed()
        if self._counted is not None:
            when, count = self._counted
            self._counted = (when, count + 1)
        return True

    async def touch_session(
        self, session_id: str, *, connected: bool = False, incarnation: str | None = None
    ) -> SessionRecord:
        now = self._clock()
        live = self._entry(session_id, incarnation)
        live.record.last_activity = now
        if connected:
            live.record.connected_at = now
        self._changed(live)
        return live.record

    async def keep_alive(self, sessions: Sequence[tuple[str, str]]) -> list[tuple[str, bool]]:
        """Activity in memory at once; written with the sessions' rows (every ROWS_EVERY
        seconds, ROWS_BATCH per transaction, so that chat messages commit between)."""
        now = self._clock()
        gone: list[tuple[str, bool]] = []
        for session_id, incarnation in sessions:
            live = self._live.get(session_id) or self._load(session_id)
            if live is None or live.record.incarnation != incarnation:
                gone.append((session_id, live is not None))
                continue
            live.record.last_activity = now
            self._behind[session_id] = live
        return gone

    async def count_sessions(self) -> int:
        """Live sessions in the file, counted at most every COUNT_EVERY seconds (and
        those created since added); activity not yet written may leave a session out.
        About, as the cap it serves can afford."""
        now = self._clock()
        if self._counted is None or (now - self._counted[0]).total_seconds() >= COUNT_EVERY:
            deadline = (now - self._ttl).timestamp()
            self._counted = (now, int(self._query(rows.COUNT_LIVE, (deadline,))[0][0]))
        return self._counted[1]

    async def list_sessions(self, *, offset: int, limit: int) -> tuple[list[SessionRecord], int]:
        await self._settled()
        deadline = (self._clock() - self._ttl).timestamp()
        found = self._query(rows.LIST_LIVE, (deadline, limit, offset))
        # A count over the activity index: C speed, and no row is read.
        total = self._query(rows.COUNT_LIVE, (deadline,))
        return [self._with_handoff(rows.record_of(row)) for row in found], int(total[0][0])

    async def export_page(
        self, *, after: str | None, limit: int, since: datetime | None = None
    ) -> tuple[list[SessionRecord], str | None]:
        await self._settled()
        since_stamp = since.timestamp() if since is not None else float("-inf")
        found = self._query(rows.EXPORT_PAGE, (after or _BEFORE_ALL, since_stamp, limit))
        records = [self._with_handoff(rows.record_of(row)) for row in found]
        return records, records[-1].session_id if len(records) == limit else None

    async def sweep_expired(self) -> int:
        """Forget (in memory) sessions idle past the TTL, and remove from the file, a
        few at a time, the transcripts idle past the retention; how many went."""
        now = self._clock()
        idle = now - self._ttl
        for sid in [s for s, live in self._live.items() if live.record.last_activity < idle]:
            if sid not in self._behind:
                del self._live[sid]
        for key in [k for k, batch in self._unconfirmed.items() if batch.finished]:
            del self._unconfirmed[key]  # no reply came (the worker was cancelled)
        for sid, leases in list(self._leases.items()):  # their producers died or gave up
            for reply_id in [r for r, until in leases.items() if until <= now]:
                del leases[reply_id]
            if not leases:
                del self._leases[sid]
        if self._retention is None:
            return 0
        cutoff = (now - self._retention).timestamp()
        removed = 0
        while True:
            found = self._query(
                "SELECT session_id FROM sessions WHERE last_activity < ? "
                "ORDER BY last_activity LIMIT ?",
                (cutoff, RETENTION_BATCH),
            )
            # A session in use may be newer in memory than in the file.
            stale = [sid for (sid,) in found if self._idle_since(sid) < cutoff]
            if stale:
                await self._remove(stale)
                removed += len(stale)
                await asyncio.sleep(0)  # chat messages go between the batches
            if len(stale) < RETENTION_BATCH:
                return removed

    async def erase(
        self, *, session_id: str | None = None, user_id: str | None = None
    ) -> list[tuple[str, str]]:
        """Delete the sessions with their history and dedup state, then checkpoint the
        WAL into the file and truncate it: with secure_delete on, no copy of their
        rows is left in the file, its free pages or the WAL."""
        if (session_id is None) == (user_id is None):
            raise ValueError("erase one session_id or one user_id")
        if session_id is not None:
            found = await self.get_session(session_id)
            erased = {} if found is None else {session_id: found.incarnation}
        else:
            erased = dict(self._query(_BY_USER, (user_id,)))
            for sid, live in self._live.items():
                if live.record.user_id == user_id:
                    erased[sid] = live.record.incarnation
        if not erased:
            return []
        await self._remove(list(erased))
        if not await self._write(checkpoint):
            log.warning("the WAL could not be truncated after an erasure; the next one will")
        return list(erased.items())

    # -- history --------------------------------------------------------------

    async def add_user_message(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: FrameAround | None = None,
        recent: int = 0,
        incarnation: str | None = None,
        defer: bool = False,
    ) -> AddedMessage:
        """With ``defer``, the message goes into the open batch and the call returns at
        once: its reply, made in the same loop turn by an agent that answers at once,
        joins the same transaction. One commit per exchange instead of two: fewer
        pages written (each session's index page once) and a loop turn less."""
        now = self._clock()
        live = self._entry(session_id, incarnation)
        key = message.client_message_id
        seen = self._seen(live) if key is not None else None
        if seen is not None and key in seen:
            live.record.last_activity = now
            self._changed(live)
            return await self._resent(live, seen[key], message, recent)
        live.seq += 2
        stored = renumbered(message, live.seq - 1)
        batch = self._batch
        batch.messages.append((session_id, stored.id, stored.model_dump_json()))
        self._count(live, stored.id, now)
        if seen is not None and key is not None:
            seen[key] = stored.id
            batch.seen.append((session_id, key, stored.id))
            if len(seen) > DEDUP_WINDOW + SEEN_SLACK:
                self._forget_oldest(live, seen)
        earlier = self._recent(session_id, stored.id, recent) if recent else []
        reply_id = live.seq
        # Leased before the commit: a resend meanwhile is told the reply follows.
        self._lease(session_id, reply_id, now)
        if defer:
            self._unconfirmed[(session_id, reply_id)] = batch
            self._schedule()  # committed at the end of this turn, reply or not
            written = functools.partial(self._written, batch)
            return AddedMessage(
                stored, reply_id=reply_id, recent=earlier, hold=live.record.hold, stored=written
            )
        try:
            await self._committed()
        except StorageUnavailable:  # nothing was stored: nothing to answer
            self._end_lease(session_id, reply_id)
            raise
        return AddedMessage(stored, reply_id=reply_id, recent=earlier, hold=live.record.hold)

    async def _resent(
        self, live: Live, message_id: int, message: StoredMessage, recent: int
    ) -> AddedMessage:
        """A resend of ``message_id``: its reply, or nothing (in progress), or a new lease.

        It first waits for what is being written (the original, or its reply, may be
        in that transaction), so that it is decided on what the file holds; if that
        write fails, so does the resend, which the client then sends again.
        """
        session_id = live.record.session_id
        await self._settled()
        self._entry(session_id, live.record.incarnation)  # not erased meanwhile
        original = self._stored(session_id, message_id, message)
        reply_id = message_id + 1
        hold = live.record.hold
        found = self._query(MESSAGE_BY_ID, (session_id, reply_id))
        if found:
            reply = rows.message_of(found[0][0])
            return AddedMessage(original, reply_id=None, resent=True, reply=reply, hold=hold)
        now = self._clock()
        until = self._leases.get(session_id, {}).get(reply_id)
        if until is not None and until > now:
            return AddedMessage(original, reply_id=None, resent=True, hold=hold)
        self._lease(session_id, reply_id, now)  # its producer died or gave up: answer again
        earlier = self._recent(session_id, message_id, recent) if recent else []
        return AddedMessage(original, reply_id=reply_id, resent=True, recent=earlier, hold=hold)

    async def add_reply(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: str | None = None,
        incarnation: str | None = None,
    ) -> bool:
        """The lease ends once the reply is committed (until then a resend is told it
        follows), or when the commit fails: the reply was not stored, a resend is
        answered again."""
        asked = self._unconfirmed.pop((session_id, message.id), None)
        if asked is not None and asked.error is not None:  # its message was not stored
            self._end_lease(session_id, message.id)
            raise StorageUnavailable(f"cannot write {self.path}")
        now = self._clock()
        live = self._entry(session_id, incarnation)
        # After its message's batch (the same one, or the next, which fails with it).
        self._batch.messages.append((session_id, message.id, message.model_dump_json()))
        self._count(live, message.id, now)
        try:
            await self._committed()
        finally:
            self._end_lease(session_id, message.id)
        return False

    async def release(self, session_id: str, reply_id: int) -> None:
        self._unconfirmed.pop((session_id, reply_id), None)
        self._end_lease(session_id, reply_id)

    async def _written(self, batch: Batch) -> None:
        """Wait until ``batch`` (a deferred message's) has committed."""
        if not batch.finished:
            await self._waiter(batch)
        elif batch.error is not None:
            raise StorageUnavailable(f"cannot write {self.path}")

    async def history(
        self,
        session_id: str,
        *,
        after: int | None,
        limit: int,
        touch: bool = True,
        incarnation: str | None = None,
    ) -> tuple[list[StoredMessage], bool]:
        if touch:
            live = self._entry(session_id, incarnation)
            live.record.last_activity = self._clock()
            self._changed(live)
        else:
            checked(
                session_id,
                self._live.get(session_id) or self._read_session(session_id),
                incarnation,
            )
        if after is None:
            found = self._query(_LATEST, (session_id, min(limit, self._history_limit)))
            return [rows.message_of(body) for (body,) in reversed(found)], False
        found = self._query(_AFTER, (session_id, after, limit + 1, self._history_limit - 1))
        return [rows.message_of(body) for (body,) in found[:limit]], len(found) > limit

    # -- helpers of sessions and history -----------------------------------------

    def _seen(self, live: Live) -> dict[str, int]:
        if live.seen is None:
            live.seen = {}
        if not live.seen_complete:
            loaded = self._query(_SEEN, (live.record.session_id,))
            live.seen = {**dict(loaded), **live.seen}
            live.seen_complete = True
        return live.seen

    def _forget_oldest(self, live: Live, seen: dict[str, int]) -> None:
        """Keep the last DEDUP_WINDOW client message ids (dicts keep insertion order)."""
        oldest = list(seen)[: len(seen) - DEDUP_WINDOW]
        for key in oldest:
            del seen[key]
        lowest_kept = next(iter(seen.values()))
        self._batch.seen_trims.append((live.record.session_id, lowest_kept))
        self._changed(live)

    def _idle_since(self, session_id: str) -> float:
        live = self._live.get(session_id)
        return float("-inf") if live is None else live.record.last_activity.timestamp()

    def _stored(self, session_id: str, message_id: int, resent: StoredMessage) -> StoredMessage:
        """The message stored under ``message_id`` (a resend's original); if history has
        dropped it since, what was resent, under the original id."""
        found = self._query(MESSAGE_BY_ID, (session_id, message_id))
        if found:
            return rows.message_of(found[0][0])
        return resent.model_copy(update={"id": message_id})

    def _recent(self, session_id: str, before: int, count: int) -> list[StoredMessage]:
        found = self._query(_BEFORE, (session_id, before, count))
        return [rows.message_of(body) for (body,) in reversed(found)]

    def _lease(self, session_id: str, reply_id: int, now: datetime) -> None:
        self._leases.setdefault(session_id, {})[reply_id] = now + self._lease_for

    def _end_lease(self, session_id: str, reply_id: int) -> None:
        leases = self._leases.get(session_id)
        if leases is not None:
            leases.pop(reply_id, None)
            if not leases:
                del self._leases[session_id]


_BY_USER = "SELECT session_id, incarnation FROM sessions WHERE user_id = ?"
_SEEN = "SELECT client_message_id, message_id FROM seen WHERE session_id = ? ORDER BY message_id"
_LATEST = "SELECT body FROM messages WHERE session_id = ? ORDER BY id DESC LIMIT ?"
#: (session, after, limit, history limit - 1): messages past the history limit
#: wait for the next rows to be dropped (base.ROWS_EVERY) and are never read.
_AFTER = (
    "SELECT body FROM messages WHERE session_id = ?1 AND id > ?2 AND id >= coalesce("
    "(SELECT id FROM messages WHERE session_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?4), 0) "
    "ORDER BY id LIMIT ?3"
)
_BEFORE = "SELECT body FROM messages WHERE session_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
