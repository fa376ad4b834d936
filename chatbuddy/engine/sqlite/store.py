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
import contextlib
import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chatbuddy.engine.sqlite import handoff, rows
from chatbuddy.engine.sqlite.batch import Batch, Live, checkpoint, delete_sessions
from chatbuddy.engine.sqlite.checkpoints import Checkpointer
from chatbuddy.engine.sqlite.lock import FileLock
from chatbuddy.engine.sqlite.schema import VERSION, StoreFileError, connect, migrate, unusable
from chatbuddy.engine.sqlite.writer import Writer
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
from chatbuddy.errors import SessionNotFound, SessionReplaced, StorageUnavailable
from chatbuddy.records import Hold, Note, SessionRecord, StoredMessage, trusted, utcnow

log = logging.getLogger(__name__)

#: Client message ids remembered beyond DEDUP_WINDOW before the oldest are dropped
#: (dropping them in bulk keeps the per-message work constant).
SEEN_SLACK = 100
#: Sessions removed per retention transaction: small, so that the commits of
#: chat messages queued behind it wait only briefly.
RETENTION_BATCH = 20
#: Sessions whose open tabs' activity is written per transaction: 10,000 open tabs
#: in one took ~100 ms, which every chat message committed meanwhile waited for.
KEEP_ALIVE_BATCH = 500
#: Seconds a count of live sessions is reused (plus the sessions created since):
#: counting 100,000 in the index takes 2-3 ms, too much for every new session.
COUNT_EVERY = 1.0
#: No session id sorts before this (ids are 1..128 visible ASCII characters).
_BEFORE_ALL = ""


class SQLiteStore:
    """A :class:`chatbuddy.engine.store.SessionStore` in one SQLite file, for one process."""

    name = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        session_ttl: float,
        history_limit: int,
        retention: float | None,
        synchronous: str = "normal",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # The database file.
        self.path = path
        # A session is live (listed) while idle less than this.
        self._ttl = timedelta(seconds=session_ttl)
        # Messages kept per session.
        self._history_limit = history_limit
        # Transcripts idle longer than this are removed; None: kept.
        self._retention = None if retention is None else timedelta(seconds=retention)
        # "normal" (survives a crash) or "full" (survives power loss; an fsync per commit).
        self._synchronous = synchronous
        # Injected so that tests can move time instead of sleeping.
        self._clock = clock
        # Keeps a second process off the file.
        self._lock = FileLock(path)
        # The event loop's read-only connection; set by start().
        self._reader: sqlite3.Connection | None = None
        # The thread that writes; set by start().
        self._writer: Writer | None = None
        # Copies the WAL into the file beside the writer; set by start().
        self._checkpointer: Checkpointer | None = None
        # Where waiters are made; set by start().
        self._loop: asyncio.AbstractEventLoop | None = None
        # session id -> what we keep of a session in use (loaded from the file on first use).
        self._live: dict[str, Live] = {}
        # Sessions being erased: they read as absent until the erasure commits.
        self._erasing: set[str] = set()
        # session id -> {reply id: when its lease ends}: replies this process is
        # producing. In memory on purpose: after a restart their producers are gone,
        # and a resend of their messages is answered again.
        self._leases: dict[str, dict[int, datetime]] = {}
        # How long a reply being produced holds its lease.
        self._lease_for = timedelta(seconds=LEASE_SECONDS)
        # The writes of the next transaction.
        self._batch = Batch()
        # Batches handed to the writer and not yet committed (at most one, but for erasures).
        self._in_flight = 0
        # Whether a seal of the open batch is scheduled for the end of this loop turn.
        self._seal_scheduled = False
        # Whether the last transaction failed (for /readyz and one log line per outage).
        self._failing = False
        # (when, live sessions then and created since) for count_sessions(); None: count.
        self._counted: tuple[datetime, int] | None = None

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Lock, open and migrate the file; raises StoreFileError (exit 3) if it cannot be used."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():  # conversations are private to the server's user
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise StoreFileError(f"cannot use {self.path}: {exc.strerror}") from None
        self._lock.acquire()
        try:
            connection = connect(self.path, synchronous=self._synchronous)
            try:
                found = migrate(connection, self.path)
                self._reader = connect(self.path, synchronous=self._synchronous, read_only=True)
                copier = connect(self.path, synchronous=self._synchronous)
            except BaseException:
                connection.close()
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
                raise
        except BaseException:
            self._lock.release()
            raise
        if 0 < found < VERSION:
            log.info("migrated %s from schema version %d to %d", self.path, found, VERSION)
        self._loop = asyncio.get_running_loop()
        self._writer = Writer(connection, name="chatbuddy-sqlite-writer")
        self._writer.start()
        self._checkpointer = Checkpointer(copier, self.path)
        self._checkpointer.start()

    async def close(self) -> None:
        """Commit what is pending, stop the writer, close the file, release the lock."""
        if self._writer is None:
            return
        if self._batch or self._in_flight:
            waiter = self._waiter()
            if not self._in_flight:
                self._seal()
            with contextlib.suppress(StorageUnavailable):  # already reported
                await waiter
        writer, self._writer = self._writer, None
        if self._checkpointer is not None:
            await self._checkpointer.close()
            self._checkpointer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        await writer.close()
        self._lock.release()

    def ready(self) -> bool:
        return self._writer is not None and not self._failing

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

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The session if the file keeps it: live or not, it can be resumed until
        retention removes it (docs/storage.md). Not activity."""
        live = self._live.get(session_id)
        if live is not None:
            return live.record
        found = self._read_session(session_id)
        return None if found is None else found.record

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
        """Activity in memory at once; written KEEP_ALIVE_BATCH sessions per transaction,
        so that chat messages commit between them. Nobody is told of these writes, so
        a failed one is only logged (by the writer's failure handling)."""
        now = self._clock()
        gone: list[tuple[str, bool]] = []
        alive: list[Live] = []
        for session_id, incarnation in sessions:
            live = self._live.get(session_id) or self._load(session_id)
            if live is None or live.record.incarnation != incarnation:
                gone.append((session_id, live is not None))
                continue
            live.record.last_activity = now
            alive.append(live)
        with contextlib.suppress(StorageUnavailable):
            for start in range(0, len(alive), KEEP_ALIVE_BATCH):
                for live in alive[start : start + KEEP_ALIVE_BATCH]:
                    self._batch.dirty[live.record.session_id] = live
                await self._settled()
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
            if sid not in self._batch.dirty:
                del self._live[sid]
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
    ) -> AddedMessage:
        now = self._clock()
        live = self._entry(session_id, incarnation)
        key = message.client_message_id
        seen = self._seen(live) if key is not None else None
        if seen is not None and key in seen:
            live.record.last_activity = now
            self._changed(live)
            return await self._resent(live, seen[key], message, recent)
        live.seq += 2
        # Validated when it was made; only the id changes.
        stored = trusted(StoredMessage, {**message.__dict__, "id": live.seq - 1})
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
        found = self._query(_ONE, (session_id, reply_id))
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
        now = self._clock()
        live = self._entry(session_id, incarnation)
        self._batch.messages.append((session_id, message.id, message.model_dump_json()))
        self._count(live, message.id, now)
        try:
            await self._committed()
        finally:
            self._end_lease(session_id, message.id)
        return False

    async def release(self, session_id: str, reply_id: int) -> None:
        self._end_lease(session_id, reply_id)

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
            _check(
                session_id,
                self._live.get(session_id) or self._read_session(session_id),
                incarnation,
            )
        if after is None:
            found = self._query(_LATEST, (session_id, limit))
            return [rows.message_of(body) for (body,) in reversed(found)], False
        found = self._query(_AFTER, (session_id, after, limit + 1))
        return [rows.message_of(body) for (body,) in found[:limit]], len(found) > limit

    # -- hand-off to a person -----------------------------------------------------
    #
    # Decided on the event loop from the session in memory (one process holds the
    # file, so a check and its change are atomic), written before the call returns.

    async def take_hold(
        self, session_id: str, operator: str, *, until: datetime, incarnation: str | None = None
    ) -> HoldOutcome:
        now = self._clock()
        live = self._entry(session_id, incarnation)
        record = live.record
        held = record.hold
        if held is not None and held.live(now) and held.operator != operator:
            return HoldOutcome(taken=False, hold=held)
        renewed = held is not None and held.live(now) and held.operator == operator
        since = held.since if renewed and held is not None else now
        record.hold = Hold(operator=operator, since=since, until=until)
        record.waiting_since = None
        record.last_activity = now
        self._changed(live)
        await self._put_handoff(record)
        return HoldOutcome(taken=True, hold=record.hold, renewed=renewed)

    async def release_hold(
        self, session_id: str, operator: str | None = None, *, expired_only: bool = False
    ) -> Hold | None:
        now = self._clock()
        live = self._live.get(session_id) or self._load(session_id)
        held = None if live is None else live.record.hold
        if live is None or held is None:
            return None
        if operator is not None and held.operator != operator:
            return None
        if expired_only and held.live(now):
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
        stored = trusted(StoredMessage, {**message.__dict__, "id": live.seq})
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
        found = self._query(_ONE, (session_id, message_id))
        message = rows.message_of(found[0][0]) if found else None
        if message is None or message.role == "user":
            return None
        live.record.last_activity = now
        self._changed(live)
        before = message.reaction
        changed = message.model_copy(update={"reaction": reaction})
        self._batch.messages.append((session_id, message_id, changed.model_dump_json()))
        await self._committed()
        who, route = (
            (OPERATOR_AGENT, None) if message.role == "operator" else (agent, message.agent)
        )
        up = (reaction == "up") - (before == "up")
        down = (reaction == "down") - (before == "down")
        if up or down:
            await self._write(functools.partial(handoff.count_reaction, who, route, up, down))
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

    # -- the state of sessions in use -----------------------------------------

    def _entry(self, session_id: str, incarnation: str | None = None) -> Live:
        """The session in memory, loaded from the file on first use; raises
        SessionNotFound, or SessionReplaced if it is not the ``incarnation`` asked for."""
        live = self._live.get(session_id) or self._load(session_id)
        return _check(session_id, live, incarnation)

    def _load(self, session_id: str) -> Live | None:
        """The session read from the file and kept in memory from now on."""
        live = self._read_session(session_id)
        if live is not None:
            self._live[session_id] = live
        return live

    def _read_session(self, session_id: str) -> Live | None:
        if session_id in self._erasing:
            return None
        found = self._query(rows.SELECT_SESSION, (session_id,))
        if not found:
            return None
        row = found[0]
        return Live(self._with_handoff(rows.record_of(row)), seq=row[10], kept=row[11])

    def _with_handoff(self, record: SessionRecord) -> SessionRecord:
        """``record`` (read from the file) with its hand-off state: from memory if the
        session is in use (it may be newer there), else from the file."""
        live = self._live.get(record.session_id)
        if live is not None:
            return live.record
        found = self._query(handoff.SELECT_HANDOFF, (record.session_id,))
        return handoff.with_handoff(record, found[0] if found else None)

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

    def _count(self, live: Live, message_id: int, now: datetime) -> None:
        record = live.record
        record.message_count += 1
        if record.last_message_id is None or message_id > record.last_message_id:
            record.last_message_id = message_id
        record.last_activity = now
        live.kept += 1
        self._batch.dirty[record.session_id] = live

    def _changed(self, live: Live) -> None:
        """The session's row is to be written with the next transaction (nobody waits)."""
        self._batch.dirty[live.record.session_id] = live
        self._schedule()

    def _idle_since(self, session_id: str) -> float:
        live = self._live.get(session_id)
        return float("-inf") if live is None else live.record.last_activity.timestamp()

    def _stored(self, session_id: str, message_id: int, resent: StoredMessage) -> StoredMessage:
        """The message stored under ``message_id`` (a resend's original); if history has
        dropped it since, what was resent, under the original id."""
        found = self._query(_ONE, (session_id, message_id))
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

    def _query(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        reader = self._reader
        if reader is None:
            raise StorageUnavailable(f"the store {self.path} is closed")
        try:
            return reader.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            log.warning("reading %s failed: %s", self.path, unusable(self.path, exc))
            raise StorageUnavailable(str(exc)) from None

    # -- group commit -----------------------------------------------------------

    async def _committed(self) -> None:
        """Wait until the writes made so far are committed."""
        await self._waiter()

    def _waiter(self) -> asyncio.Future[None]:
        assert self._loop is not None, "start() the store first"
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._batch.waiters.append(waiter)
        self._schedule()
        return waiter

    async def _settled(self) -> None:
        """Wait until everything written so far is in the file (before reading lists)."""
        if self._batch or self._in_flight:
            await self._waiter()

    def _schedule(self) -> None:
        """Seal the batch at the end of this loop turn, unless one is being written:
        then it is sealed when that one commits, with all that came meanwhile."""
        if not self._seal_scheduled and not self._in_flight and self._loop is not None:
            self._seal_scheduled = True
            self._loop.call_soon(self._seal)

    def _seal(self) -> None:
        self._seal_scheduled = False
        batch = self._batch
        if not batch or self._writer is None:
            return
        self._batch = Batch()
        self._in_flight += 1
        written = self._writer.submit(batch.seal(self._history_limit).write)
        written.add_done_callback(functools.partial(self._done, batch))

    def _done(self, batch: Batch, written: asyncio.Future[None]) -> None:
        self._in_flight -= 1
        error = written.exception()
        if error is None:
            if self._checkpointer is not None:
                self._checkpointer.committed()
            if self._failing:
                log.info("writing %s works again", self.path)
                self._failing = False
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_result(None)
        else:
            self._fail(batch, error)
        if self._batch and not self._in_flight:
            self._seal()

    def _fail(self, batch: Batch, error: BaseException) -> None:
        """Nothing of the batch was acknowledged: its waiters, and those of the writes
        made on top of it, are told the store is unavailable, and what is kept in
        memory is dropped so that it is read from the file again."""
        if not self._failing:
            log.error("writing %s failed (%s); retrying with the next writes", self.path, error)
        self._failing = True
        later, self._batch = self._batch, Batch()
        self._live.clear()
        for waiter in [*batch.waiters, *later.waiters]:
            if not waiter.done():
                waiter.set_exception(StorageUnavailable(f"cannot write {self.path}"))

    async def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``work`` in the writer thread after everything written so far."""
        if self._writer is None:
            raise StorageUnavailable(f"the store {self.path} is closed")
        self._seal()
        try:
            return await self._writer.submit(work)
        except sqlite3.Error as exc:
            raise StorageUnavailable(str(unusable(self.path, exc))) from None

    async def _remove(self, session_ids: list[str]) -> None:
        """Delete sessions from memory at once and from the file after the writes queued
        before; until that commits they read as absent."""
        self._erasing.update(session_ids)
        for sid in session_ids:
            self._live.pop(sid, None)
            self._batch.dirty.pop(sid, None)
            self._leases.pop(sid, None)
        try:
            await self._write(functools.partial(delete_sessions, session_ids))
        finally:
            self._erasing.difference_update(session_ids)


def _check(session_id: str, live: Live | None, incarnation: str | None) -> Live:
    """``live``, if it is there and (when asked) the ``incarnation`` asked for."""
    if live is None:
        raise SessionNotFound(session_id)
    if incarnation is not None and live.record.incarnation != incarnation:
        raise SessionReplaced(session_id)
    return live


_BY_USER = "SELECT session_id, incarnation FROM sessions WHERE user_id = ?"
_SEEN = "SELECT client_message_id, message_id FROM seen WHERE session_id = ? ORDER BY message_id"
_ONE = "SELECT body FROM messages WHERE session_id = ? AND id = ?"
_LATEST = "SELECT body FROM messages WHERE session_id = ? ORDER BY id DESC LIMIT ?"
_AFTER = "SELECT body FROM messages WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?"
_BEFORE = "SELECT body FROM messages WHERE session_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
