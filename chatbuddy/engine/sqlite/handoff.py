"""Rows of a person in the conversation (holds, the waiting mark, read marks, notes,
reaction totals) in the SQLite file, and the writer-thread functions that write them.

The event loop decides (the store is one process's, so a check and the change it
allows happen without an await between them, as in the memory store); these only
write what it decided, each in its own transaction after the writes queued before.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from chatbuddy.engine.sqlite.rows import moment
from chatbuddy.engine.sqlite.writer import transaction
from chatbuddy.records import Hold, Note, SessionRecord

SELECT_HANDOFF = (
    "SELECT hold_operator, hold_since, hold_until, waiting_since, read_by_customer, "
    "read_by_operator FROM handoff WHERE session_id = ?"
)
PUT_HANDOFF = (
    "INSERT OR REPLACE INTO handoff (session_id, hold_operator, hold_since, hold_until, "
    "waiting_since, read_by_customer, read_by_operator) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
#: Sessions whose hold ran out: (now,).
EXPIRED_HOLDS = "SELECT session_id FROM handoff WHERE hold_until <= ? ORDER BY hold_until"
#: Sessions waiting for a person, longest first: (live since, now, limit).
WAITING = (
    "SELECT h.session_id FROM handoff h JOIN sessions s ON s.session_id = h.session_id "
    "WHERE h.waiting_since IS NOT NULL AND s.last_activity >= ? "
    "AND (h.hold_until IS NULL OR h.hold_until <= ?) ORDER BY h.waiting_since LIMIT ?"
)
NOTES = "SELECT operator, content, at FROM notes WHERE session_id = ? ORDER BY n"
TOTALS = (
    "SELECT agent, route, up, down FROM reaction_totals WHERE up > 0 OR down > 0 "
    "ORDER BY agent, route"
)


def handoff_row(record: SessionRecord) -> tuple[Any, ...]:
    """The values of PUT_HANDOFF."""
    hold = record.hold
    return (
        record.session_id,
        None if hold is None else hold.operator,
        None if hold is None else hold.since.timestamp(),
        None if hold is None else hold.until.timestamp(),
        None if record.waiting_since is None else record.waiting_since.timestamp(),
        record.read_by_customer,
        record.read_by_operator,
    )


def with_handoff(record: SessionRecord, row: tuple[Any, ...] | None) -> SessionRecord:
    """``record`` with the hand-off state of its SELECT_HANDOFF row (if any) set."""
    if row is None:
        return record
    operator, since, until, waiting, read_customer, read_operator = row
    if operator is not None:
        record.hold = Hold(operator=operator, since=moment(since), until=moment(until))
    record.waiting_since = None if waiting is None else moment(waiting)
    record.read_by_customer = read_customer
    record.read_by_operator = read_operator
    return record


def put_handoff(row: tuple[Any, ...], connection: sqlite3.Connection) -> None:
    """In the writer thread: a session's hand-off state as it is now."""
    transaction(connection, lambda: connection.execute(PUT_HANDOFF, row))


def add_note(session_id: str, note: Note, keep: int, connection: sqlite3.Connection) -> None:
    """In the writer thread: the note, and only the last ``keep`` of the session's."""

    def statements() -> None:
        (last,) = connection.execute(
            "SELECT coalesce(max(n), 0) FROM notes WHERE session_id = ?", (session_id,)
        ).fetchone()
        connection.execute(
            "INSERT INTO notes (session_id, n, operator, content, at) VALUES (?, ?, ?, ?, ?)",
            (session_id, last + 1, note.operator, note.content, note.timestamp.timestamp()),
        )
        connection.execute(
            "DELETE FROM notes WHERE session_id = ? AND n <= ?", (session_id, last + 1 - keep)
        )

    transaction(connection, statements)


#: Adds to a reaction total (agent, route or '', up, down; each -1, 0 or 1).
COUNT_REACTION = (
    "INSERT INTO reaction_totals (agent, route, up, down) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (agent, route) DO UPDATE SET up = up + excluded.up, "
    "down = down + excluded.down"
)
