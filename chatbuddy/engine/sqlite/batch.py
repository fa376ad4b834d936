"""Group commit: every write made during the event loop's turns while the writer
was busy goes to the file in one transaction.

The store adds rows to the open :class:`Batch` as it handles requests, and each
request that must be durable before it returns (a message, a reply, a new
session) adds a waiter. The batch is sealed into plain rows on the event loop
(so the writer thread touches nothing the loop may change), written by the
writer thread in one transaction, and its waiters are released only once that
transaction has committed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from chatbuddy.engine.sqlite import handoff, rows
from chatbuddy.engine.sqlite.writer import transaction
from chatbuddy.records import SessionRecord


@dataclass(slots=True, eq=False)
class Live:
    """What the store keeps in memory of a session it has used: the record as it is
    now, and what the next write needs without reading the file."""

    record: SessionRecord
    # The last message id handed out.
    seq: int
    # How many messages the file holds for it (to trim at the history limit).
    kept: int
    # client_message_id -> message id, oldest first; None until first needed.
    seen: dict[str, int] | None = None
    # Whether ``seen`` is all there is (a session made here, or loaded from the file).
    seen_complete: bool = False


@dataclass(slots=True, eq=False)
class Batch:
    """Writes waiting for the next transaction, and who waits for it."""

    created: list[tuple[Any, ...]] = field(default_factory=list)
    messages: list[tuple[str, int, str]] = field(default_factory=list)
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    seen_trims: list[tuple[str, int]] = field(default_factory=list)
    # Changes to the reaction totals (agent, route or '', up, down), with the
    # reactions in ``messages`` that make them.
    tallies: list[tuple[str, str, int, int]] = field(default_factory=list)
    # Sessions whose row is written with this batch, as it is when sealed, and
    # whose oldest messages past the history limit are dropped with it.
    dirty: dict[str, Live] = field(default_factory=dict)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    # Whether its transaction has ended, and why it failed if it did (for the
    # messages whose durability was deferred: see SQLiteStore.add_user_message).
    finished: bool = False
    error: BaseException | None = None

    def __bool__(self) -> bool:
        return bool(self.waiters or self.dirty or self.created or self.messages)

    def seal(self, history_limit: int) -> Sealed:
        """The rows to write, taken now (the sessions' state goes on changing)."""
        updates = [rows.update_row(live.record, live.seq) for live in self.dirty.values()]
        trims: list[tuple[str, int]] = []
        for live in self.dirty.values():
            if live.kept > history_limit:
                sid = live.record.session_id
                trims.append((sid, history_limit - 1))
                live.kept = history_limit
        return Sealed(
            self.created, self.messages, self.seen, trims, self.seen_trims, self.tallies, updates
        )


@dataclass(frozen=True, slots=True)
class Sealed:
    """A batch's rows, for the writer thread alone."""

    created: list[tuple[Any, ...]]
    messages: list[tuple[str, int, str]]
    seen: list[tuple[str, str, int]]
    trims: list[tuple[str, int]]
    seen_trims: list[tuple[str, int]]
    tallies: list[tuple[str, str, int, int]]
    updates: list[tuple[Any, ...]]

    def write(self, connection: sqlite3.Connection) -> None:
        """In the writer thread: everything in one transaction (nothing if empty)."""
        if not (self.created or self.messages or self.updates):
            return
        transaction(connection, lambda: self._statements(connection))

    def _statements(self, connection: sqlite3.Connection) -> None:
        # Sessions before their messages; trims after the inserts they make necessary.
        for sql, values in (
            (rows.INSERT_SESSION, self.created),
            (rows.INSERT_MESSAGE, self.messages),
            (rows.INSERT_SEEN, self.seen),
            (rows.TRIM_MESSAGES, self.trims),
            (rows.TRIM_SEEN, self.seen_trims),
            (handoff.COUNT_REACTION, self.tallies),
            (rows.UPDATE_SESSION, self.updates),
        ):
            if values:
                connection.executemany(sql, values)


def catch_up_rows(connection: sqlite3.Connection) -> int:
    """Bring every session row that is behind its messages up to date (after a crash:
    rows are written after the messages they count); how many were."""
    updates = []
    for (session_id,) in connection.execute(rows.SELECT_BEHIND).fetchall():
        record, seq, _, _ = rows.caught_up(
            connection.execute(rows.SELECT_SESSION, (session_id,)).fetchone()
        )
        updates.append(rows.update_row(record, seq))
    if updates:
        transaction(connection, lambda: connection.executemany(rows.UPDATE_SESSION, updates))
    return len(updates)


def delete_sessions(session_ids: list[str], connection: sqlite3.Connection) -> None:
    """In the writer thread: the sessions, their history and dedup state, in one transaction."""

    def statements() -> None:
        keys = [(sid,) for sid in session_ids]
        for sql in rows.DELETE_SESSION:
            connection.executemany(sql, keys)

    transaction(connection, statements)


def checkpoint(connection: sqlite3.Connection) -> bool:
    """In the writer thread: copy the WAL into the file and truncate it to nothing, so
    erased rows survive in neither (secure_delete zeroed them in the file's pages).
    False if readers kept it from finishing (the next one will)."""
    for _ in range(5):
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return True
    return False
