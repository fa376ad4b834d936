"""The SQLite file's schema: numbered migrations, and opening a file safely.

The schema version is SQLite's ``user_version``. A file is brought up to
:data:`VERSION` by running, in order and each in its own transaction, the
migrations it has not had; a migration, once released, is never edited (a new
one is added), because files made by every earlier version must still open.
A file whose version is newer than this program's is refused: an older
ChatBuddy cannot know what a newer one stored. Nothing here ever deletes or
recreates a file it cannot read.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chatbuddy.engine.sqlite.checkpoints import JOURNAL_LIMIT
from chatbuddy.errors import ConfigurationError

#: (version, SQL): migration N takes a file from version N-1 to N.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        -- One row per kept session. Times are Unix seconds (UTC); client_info is JSON.
        CREATE TABLE sessions (
            session_id      TEXT PRIMARY KEY,
            user_id         TEXT,
            token_hash      TEXT NOT NULL,
            client_info     TEXT NOT NULL,
            created_at      REAL NOT NULL,
            connected_at    REAL NOT NULL,
            last_activity   REAL NOT NULL,
            message_count   INTEGER NOT NULL DEFAULT 0,
            last_message_id INTEGER,
            -- the last message id handed out (a reply's is reserved with its question's)
            seq             INTEGER NOT NULL DEFAULT 0
        );
        -- Listing (most recent first) and retention (idle longest first).
        CREATE INDEX sessions_by_activity ON sessions (last_activity, session_id);
        -- A session's kept history; body is the StoredMessage as JSON.
        CREATE TABLE messages (
            session_id TEXT NOT NULL,
            id         INTEGER NOT NULL,
            body       TEXT NOT NULL,
            PRIMARY KEY (session_id, id)
        ) WITHOUT ROWID;
        -- client_message_id -> the id it was stored under (the last DEDUP_WINDOW or so).
        CREATE TABLE seen (
            session_id        TEXT NOT NULL,
            client_message_id TEXT NOT NULL,
            message_id        INTEGER NOT NULL,
            PRIMARY KEY (session_id, client_message_id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        2,
        """
        -- Data-protection requests name a customer, not a session: find theirs
        -- without reading every session.
        CREATE INDEX sessions_by_user ON sessions (user_id) WHERE user_id IS NOT NULL;
        """,
    ),
    (
        3,
        """
        -- Which life of its session id a session is (random per creation): a
        -- connection admitted to an erased or removed session never reads or
        -- writes a new one under the same id. Kept sessions get one now.
        ALTER TABLE sessions ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
        UPDATE sessions SET incarnation = lower(hex(randomblob(6)));
        """,
    ),
    (
        4,
        """
        -- A person in the conversation: who holds it and until when, since when the
        -- customer waits for one, how far each side has read. A row only for
        -- sessions that have any of it.
        CREATE TABLE handoff (
            session_id       TEXT PRIMARY KEY,
            hold_operator    TEXT,
            hold_since       REAL,
            hold_until       REAL,
            waiting_since    REAL,
            read_by_customer INTEGER NOT NULL DEFAULT 0,
            read_by_operator INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX handoff_waiting ON handoff (waiting_since) WHERE waiting_since IS NOT NULL;
        CREATE INDEX handoff_held ON handoff (hold_until) WHERE hold_until IS NOT NULL;
        -- Operators' internal notes: never the customer's or an agent's to read.
        CREATE TABLE notes (
            session_id TEXT NOT NULL,
            n          INTEGER NOT NULL,
            operator   TEXT NOT NULL,
            content    TEXT NOT NULL,
            at         REAL NOT NULL,
            PRIMARY KEY (session_id, n)
        ) WITHOUT ROWID;
        -- Customers' thumbs up and down per agent and route ('' for none), over
        -- every session there was (erasing a session keeps these counts).
        CREATE TABLE reaction_totals (
            agent TEXT NOT NULL,
            route TEXT NOT NULL,
            up    INTEGER NOT NULL DEFAULT 0,
            down  INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (agent, route)
        ) WITHOUT ROWID;
        """,
    ),
    (
        5,
        """
        -- Messages in the order they arrive, found by session through an index. A
        -- commit of messages of many sessions now appends to the table's last pages
        -- and changes one small index page per session; clustered by session, it
        -- changed (and split) two 4 KiB table pages per message (docs/storage.md).
        CREATE TABLE messages_in_order (
            n          INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL,
            id         INTEGER NOT NULL,
            body       TEXT NOT NULL
        );
        INSERT INTO messages_in_order (session_id, id, body)
            SELECT session_id, id, body FROM messages ORDER BY session_id, id;
        DROP TABLE messages;
        ALTER TABLE messages_in_order RENAME TO messages;
        CREATE UNIQUE INDEX messages_of_session ON messages (session_id, id);
        """,
    ),
)

#: The schema version this program writes.
VERSION = MIGRATIONS[-1][0]


class StoreFileError(ConfigurationError):
    """The file cannot be used (corrupt, locked, newer, not writable); it was left as it is."""


def connect(path: Path, *, synchronous: str, read_only: bool = False) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode; raises StoreFileError saying why not.

    The writer opens it read-write (creating the file if needed), and only after
    :func:`check` found it to be ChatBuddy's of a version it knows does it change
    anything (even switching to WAL rewrites the header). Readers open it
    read-only, so no code path that only reads can change the file.
    """
    where = str(path)
    try:
        if read_only:
            connection = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        else:
            connection = sqlite3.connect(where, check_same_thread=False, isolation_level=None)
        # Wait this long for a lock another program holds before saying so.
        connection.execute("PRAGMA busy_timeout = 2000")
        if not read_only:
            try:
                check(connection, path)
            except BaseException:
                connection.close()
                raise
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreFileError(f"{where}: cannot switch to WAL mode (it says {mode!r})")
        connection.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        if not read_only:
            # Checkpoints run beside the writer (checkpoints.py), not in its commits.
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            connection.execute(f"PRAGMA journal_size_limit = {JOURNAL_LIMIT:d}")
        # Erased rows are overwritten with zeros, not left in free pages.
        connection.execute("PRAGMA secure_delete = ON")
    except sqlite3.Error as exc:
        raise unusable(path, exc) from None
    return connection


def unusable(path: Path, exc: sqlite3.Error) -> StoreFileError:
    """The one-line explanation of why ``path`` cannot be used."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreFileError(
            f"{path} is locked by another program; stop it (or choose another --store sqlite:PATH)"
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreFileError(
            f"{path} is not a readable ChatBuddy database ({text}); it was left untouched: "
            "move it away or choose another --store sqlite:PATH"
        )
    return StoreFileError(f"cannot use {path}: {text}")


def check(connection: sqlite3.Connection, path: Path) -> int:
    """The file's schema version; raises StoreFileError (changing nothing) for a file of
    a newer ChatBuddy, another program's database, or no database at all."""
    found = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if found > VERSION:
        raise StoreFileError(
            f"{path} was written by a newer ChatBuddy (schema version {found}; this one "
            f"knows up to {VERSION}); upgrade ChatBuddy, or choose another --store sqlite:PATH"
        )
    if found == 0 and _has_tables(connection):
        raise StoreFileError(
            f"{path} is an SQLite database but not ChatBuddy's; it was left untouched: "
            "choose another --store sqlite:PATH"
        )
    return found


def migrate(connection: sqlite3.Connection, path: Path) -> int:
    """Bring the file to :data:`VERSION`; the version it had."""
    try:
        found = check(connection, path)
        for version, sql in MIGRATIONS:
            if version > found:
                _apply(connection, version, sql)
    except sqlite3.Error as exc:
        raise unusable(path, exc) from None
    return found


def _has_tables(connection: sqlite3.Connection) -> bool:
    row = connection.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").fetchone()
    return bool(row[0])


def _apply(connection: sqlite3.Connection, version: int, sql: str) -> None:
    """One migration and its version number, together or not at all."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(sql):
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {version:d}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _statements(sql: str) -> list[str]:
    """The statements of a migration (executescript would commit on its own)."""
    statements, current = [], ""
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]
