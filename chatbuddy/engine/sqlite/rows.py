"""Rows of the SQLite file and the statements that read and write them (schema.py
has the tables). Times are stored as Unix seconds, which a double holds to the
microsecond for the next few centuries."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from chatbuddy.records import ClientInfo, SessionRecord, StoredMessage

# Statements are whole literals (no formatting), so none can carry anything but
# parameters. Every SELECT of sessions lists the columns in session_row's order.
INSERT_SESSION = (
    "INSERT INTO sessions (session_id, user_id, token_hash, client_info, created_at, "
    "connected_at, last_activity, message_count, last_message_id, incarnation, seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_SESSION = (
    "UPDATE sessions SET connected_at = ?, last_activity = ?, message_count = ?, "
    "last_message_id = ?, seq = ? WHERE session_id = ?"
)
#: A session's row, how many messages it keeps, how many of them its row does not
#: count yet and the newest of them (rows are written after their messages: base.py).
SELECT_SESSION = (
    "SELECT session_id, user_id, token_hash, client_info, created_at, connected_at, "
    "last_activity, message_count, last_message_id, incarnation, seq, "
    "(SELECT count(*) FROM messages m WHERE m.session_id = s.session_id), "
    "(SELECT count(*) FROM messages m WHERE m.session_id = s.session_id "
    "AND m.id > coalesce(s.last_message_id, 0)), "
    "(SELECT body FROM messages m WHERE m.session_id = s.session_id ORDER BY m.id DESC LIMIT 1) "
    "FROM sessions s WHERE session_id = ?"
)
#: Sessions whose row is behind their messages (after a crash).
SELECT_BEHIND = (
    "SELECT session_id FROM sessions s WHERE EXISTS (SELECT 1 FROM messages m "
    "WHERE m.session_id = s.session_id AND m.id > coalesce(s.last_message_id, 0))"
)
#: Live sessions, most recently active first: (deadline, limit, offset).
LIST_LIVE = (
    "SELECT session_id, user_id, token_hash, client_info, created_at, connected_at, "
    "last_activity, message_count, last_message_id, incarnation FROM sessions "
    "WHERE last_activity >= ? "
    "ORDER BY last_activity DESC, session_id DESC LIMIT ? OFFSET ?"
)
COUNT_LIVE = "SELECT count(*) FROM sessions WHERE last_activity >= ?"
#: Kept sessions in id order: (after id, active since, limit).
EXPORT_PAGE = (
    "SELECT session_id, user_id, token_hash, client_info, created_at, connected_at, "
    "last_activity, message_count, last_message_id, incarnation FROM sessions "
    "WHERE session_id > ? AND last_activity >= ? ORDER BY session_id LIMIT ?"
)
INSERT_MESSAGE = "INSERT OR REPLACE INTO messages (session_id, id, body) VALUES (?, ?, ?)"
INSERT_SEEN = (
    "INSERT OR REPLACE INTO seen (session_id, client_message_id, message_id) VALUES (?, ?, ?)"
)
#: Drops a session's messages older than its newest ones: (session_id, history limit
#: - 1). By id, not by count: doing it twice drops nothing more.
TRIM_MESSAGES = (
    "DELETE FROM messages WHERE session_id = ?1 AND id < "
    "(SELECT id FROM messages WHERE session_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)"
)
#: Drops client message ids stored under ids below the second parameter.
TRIM_SEEN = "DELETE FROM seen WHERE session_id = ? AND message_id < ?"
DELETE_SESSION = (
    "DELETE FROM messages WHERE session_id = ?1",
    "DELETE FROM seen WHERE session_id = ?1",
    "DELETE FROM handoff WHERE session_id = ?1",
    "DELETE FROM notes WHERE session_id = ?1",
    "DELETE FROM sessions WHERE session_id = ?1",
)


def seconds(moment: datetime) -> float:
    return moment.timestamp()


def moment(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def session_row(record: SessionRecord, seq: int) -> tuple[Any, ...]:
    """The values of INSERT_SESSION."""
    return (
        record.session_id,
        record.user_id,
        record.token_hash,
        json.dumps(dataclasses.asdict(record.client_info), separators=(",", ":")),
        record.created_at.timestamp(),
        record.connected_at.timestamp(),
        record.last_activity.timestamp(),
        record.message_count,
        record.last_message_id,
        record.incarnation,
        seq,
    )


def update_row(record: SessionRecord, seq: int) -> tuple[Any, ...]:
    """The values of UPDATE_SESSION."""
    return (
        record.connected_at.timestamp(),
        record.last_activity.timestamp(),
        record.message_count,
        record.last_message_id,
        seq,
        record.session_id,
    )


def record_of(row: tuple[Any, ...]) -> SessionRecord:
    """A SessionRecord from the first ten columns of a SELECT of sessions."""
    sid, user_id, token_hash, client_info, created, connected, last, count, last_id = row[:9]
    incarnation = row[9]
    return SessionRecord(
        session_id=sid,
        user_id=user_id,
        client_info=ClientInfo(**json.loads(client_info)),
        created_at=moment(created),
        connected_at=moment(connected),
        last_activity=moment(last),
        token_hash=token_hash,
        message_count=count,
        last_message_id=last_id,
        incarnation=incarnation,
    )


def caught_up(row: tuple[Any, ...]) -> tuple[SessionRecord, int, int, bool]:
    """From a SELECT_SESSION row: the record, the last id handed out and the messages
    kept, counting the messages its row does not count yet; and whether it did not.

    The next ids follow the newest message, and a user message's reply keeps the id
    after it (a resend is answered under it), as if the row had been written.
    """
    record, seq, kept, unwritten, newest = record_of(row), row[10], row[11], row[12], row[13]
    if not unwritten or newest is None:
        return record, seq, kept, False
    last = message_of(newest)
    record.message_count += unwritten
    record.last_message_id = last.id
    record.last_activity = max(record.last_activity, last.timestamp)
    return record, max(seq, last.id + (last.role == "user")), kept, True


def message_of(body: str) -> StoredMessage:
    return StoredMessage.model_validate_json(body)
