"""The SQLite store's shared state: its lifecycle, the sessions in use, group commit.

``StoreBase`` holds what every part of the store works on: the file (its lock,
the read-only connection of the event loop, the writer thread and the WAL
copier), what it keeps in memory of the sessions in use (``batch.Live``), and the
group commit that puts the writes of one loop turn into one transaction
(``batch.py``). ``handoff_store.py`` adds the hand-off to a person on top of it,
and ``store.py`` sessions and history: ``SQLiteStore``. docs/storage.md has the
whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chatbuddy.engine.sqlite import handoff, rows
from chatbuddy.engine.sqlite.batch import Batch, Live, catch_up_rows, delete_sessions
from chatbuddy.engine.sqlite.checkpoints import Checkpointer
from chatbuddy.engine.sqlite.lock import FileLock
from chatbuddy.engine.sqlite.schema import VERSION, StoreFileError, connect, migrate, unusable
from chatbuddy.engine.sqlite.writer import LoopWriter, ThreadWriter, Writer
from chatbuddy.engine.store import LEASE_SECONDS
from chatbuddy.errors import SessionNotFound, SessionReplaced, StorageUnavailable
from chatbuddy.records import SessionRecord, utcnow

# The store's logger, named as before the store was split into modules (log lines
# name their logger).
log = logging.getLogger("chatbuddy.engine.sqlite.store")

#: Seconds between writes of the sessions' rows (activity, counts, the last id
#: handed out), which also drop the messages past the history limit. Neither is
#: done with each message: a message's commit wrote four pages instead of one
#: (its session's newest messages, its oldest, its row, the activity index).
#: A crash loses none of it: the messages are committed before they are
#: acknowledged, a row is caught up from them (rows.caught_up) when its session
#: is next read, or at each start for all, and reads never show messages past the
#: limit (store.py's _AFTER).
ROWS_EVERY = 1.0
#: Rows per transaction: 10,000 in one took ~100 ms, which every chat message
#: committed meanwhile waited for.
ROWS_BATCH = 500
#: Messages a session may hold past the history limit before they are dropped with
#: the next chat commit instead of waiting for the rows: a busy session then sheds
#: a few at a time, not hundreds in the transaction of every session's rows (50
#: sessions sending as fast as they are answered: that transaction, every second,
#: was most of their p99, 11-16 ms against 10-11 with nothing to drop).
TRIM_SLACK = 20

#: One message of a session by id: (session id, message id).
MESSAGE_BY_ID = "SELECT body FROM messages WHERE session_id = ? AND id = ?"


class StoreBase:
    """The state and the machinery the parts of :class:`SQLiteStore` share."""

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
        # Sessions whose row in the file is behind memory; written every ROWS_EVERY.
        self._behind: dict[str, Live] = {}
        # Writes those rows; set by start().
        self._rows_task: asyncio.Task[None] | None = None
        # session id -> the latest activity memory knew of a session whose state a
        # failed write dropped: read again from the file (its row caught up from its
        # messages) and written with that activity by the next rows.
        self._recheck: dict[str, datetime] = {}
        # Sessions being erased: they read as absent until the erasure commits.
        self._erasing: set[str] = set()
        # session id -> {reply id: when its lease ends}: replies this process is
        # producing. In memory on purpose: after a restart their producers are gone,
        # and a resend of their messages is answered again.
        self._leases: dict[str, dict[int, datetime]] = {}
        # (session id, reply id) -> the batch that holds the reply's message, for the
        # messages whose durability was deferred until their reply (add_user_message).
        self._unconfirmed: dict[tuple[str, int], Batch] = {}
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
                try:
                    # Every start: a crash leaves rows behind their messages, and a
                    # program that opened the file since may have removed the WAL.
                    caught_up = catch_up_rows(connection)
                except sqlite3.Error as exc:
                    raise unusable(self.path, exc) from None
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
        if caught_up:
            log.info(
                "rows of sessions caught up with their messages (after a crash): %d", caught_up
            )
        self._loop = asyncio.get_running_loop()
        self._writer = (
            LoopWriter(connection)
            if self._synchronous == "normal"
            else ThreadWriter(connection, name="chatbuddy-sqlite-writer")
        )
        self._writer.start()
        self._checkpointer = Checkpointer(copier, self.path)
        self._checkpointer.start()
        self._rows_task = asyncio.create_task(self._keep_rows_up(), name="sqlite-rows")

    async def close(self) -> None:
        """Commit what is pending, stop the writer, close the file, release the lock."""
        if self._writer is None:
            return
        if self._rows_task is not None:
            self._rows_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rows_task
            self._rows_task = None
        with contextlib.suppress(StorageUnavailable):  # already reported
            await self._write_rows()
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

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The session if the file keeps it: live or not, it can be resumed until
        retention removes it (docs/storage.md). Not activity."""
        live = self._live.get(session_id)
        if live is not None:
            return live.record
        found = self._read_session(session_id)
        return None if found is None else found.record

    # -- the state of sessions in use -----------------------------------------

    def _entry(self, session_id: str, incarnation: str | None = None) -> Live:
        """The session in memory, loaded from the file on first use; raises
        SessionNotFound, or SessionReplaced if it is not the ``incarnation`` asked for."""
        live = self._live.get(session_id) or self._load(session_id)
        return checked(session_id, live, incarnation)

    def _load(self, session_id: str) -> Live | None:
        """The session read from the file and kept in memory from now on."""
        live = self._read_session(session_id)
        if live is not None:
            self._live[session_id] = live
        return live

    def _read_session(self, session_id: str) -> Live | None:
        if session_id in self._erasing:
            return None
        waiting = self._behind.get(session_id)
        if waiting is not None:  # newer than its row, and one object per session
            return waiting
        found = self._query(rows.SELECT_SESSION, (session_id,))
        if not found:
            return None
        record, seq, kept, behind = rows.caught_up(found[0])
        live = Live(self._with_handoff(record), seq=seq, kept=kept)
        if behind:  # after a crash: the row catches up with the next rows written
            self._behind[session_id] = live
        return live

    def _with_handoff(self, record: SessionRecord) -> SessionRecord:
        """``record`` (read from the file) with its hand-off state: from memory if the
        session is in use (it may be newer there), else from the file."""
        live = self._live.get(record.session_id)
        if live is not None:
            return live.record
        found = self._query(handoff.SELECT_HANDOFF, (record.session_id,))
        return handoff.with_handoff(record, found[0] if found else None)

    def _count(self, live: Live, message_id: int, now: datetime) -> None:
        """A message was added to the batch: the session's counts and activity."""
        record = live.record
        record.message_count += 1
        if record.last_message_id is None or message_id > record.last_message_id:
            record.last_message_id = message_id
        else:  # stored after a later message (a slow reply): its row commits with it, as
            # a crash's catch-up counts only the messages after the row's last id
            self._batch.dirty[record.session_id] = live
        record.last_activity = now
        live.kept += 1
        self._behind[record.session_id] = live
        if live.kept > self._history_limit + TRIM_SLACK:  # its oldest go with this commit
            self._batch.dirty[record.session_id] = live

    def _changed(self, live: Live) -> None:
        """The session's row changed; it is written with the next rows (nobody waits)."""
        self._behind[live.record.session_id] = live

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

    def _waiter(self, batch: Batch | None = None) -> asyncio.Future[None]:
        """Released when ``batch`` (the open one if None) has committed."""
        assert self._loop is not None, "start() the store first"
        waiter: asyncio.Future[None] = self._loop.create_future()
        (self._batch if batch is None else batch).waiters.append(waiter)
        self._schedule()
        return waiter

    async def _settled(self) -> None:
        """Wait until everything written so far, rows included, is in the file (before
        reading lists)."""
        await self._write_rows()
        if self._batch or self._in_flight:
            await self._waiter()

    async def _write_rows(self) -> None:
        """Write the rows that are behind, ROWS_BATCH per transaction, so that chat
        messages commit between them."""
        self._read_again()
        while self._behind:
            for _ in range(min(ROWS_BATCH, len(self._behind))):
                sid, live = self._behind.popitem()
                self._batch.dirty[sid] = live
            await self._waiter()

    def _read_again(self) -> None:
        """The sessions a failed write dropped from memory: loaded again from the file
        (counts and ids caught up from the messages it holds), with the activity known
        before, and behind until their rows are written."""
        while self._recheck:
            session_id, activity = next(iter(self._recheck.items()))
            live = self._live.get(session_id) or self._load(session_id)  # may raise: kept
            del self._recheck[session_id]
            if live is not None:
                live.record.last_activity = max(live.record.last_activity, activity)
                self._behind[session_id] = live

    async def _keep_rows_up(self) -> None:
        """Every ROWS_EVERY seconds, the rows that are behind (a failure is logged by
        the group commit and the next round tries again)."""
        while True:
            await asyncio.sleep(ROWS_EVERY)
            with contextlib.suppress(StorageUnavailable):
                await self._write_rows()

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
        batch.finished = True
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
        for failed in (batch, later):
            failed.finished, failed.error = True, error
        for live in [*self._behind.values(), *batch.dirty.values(), *later.dirty.values()]:
            sid, activity = live.record.session_id, live.record.last_activity
            self._recheck[sid] = max(activity, self._recheck.get(sid, activity))
        self._live.clear()
        self._behind.clear()
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
            self._behind.pop(sid, None)
            self._recheck.pop(sid, None)
            self._batch.dirty.pop(sid, None)
            self._leases.pop(sid, None)
        try:
            await self._write(functools.partial(delete_sessions, session_ids))
        finally:
            self._erasing.difference_update(session_ids)


def checked(session_id: str, live: Live | None, incarnation: str | None) -> Live:
    """``live``, if it is there and (when asked) the ``incarnation`` asked for."""
    if live is None:
        raise SessionNotFound(session_id)
    if incarnation is not None and live.record.incarnation != incarnation:
        raise SessionReplaced(session_id)
    return live
