"""What only the SQLite store does: its file, schema versions, retention, erasure."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from chatbuddy.engine.sqlite import MIGRATIONS, VERSION, SQLiteStore, StoreFileError, checkpoints
from chatbuddy.engine.sqlite import base as sqlite_base
from chatbuddy.engine.sqlite import store as sqlite_store
from chatbuddy.engine.sqlite.store import RETENTION_BATCH
from chatbuddy.errors import SessionReplaced, StorageUnavailable
from chatbuddy.records import Note, StoredMessage, utcnow
from tests.builders import record, reply, user_message
from tests.doubles import FakeClock

DAY = 86400.0


def make_store(
    path: Path, clock: FakeClock | None = None, retention: float | None = 90 * DAY
) -> SQLiteStore:
    return SQLiteStore(
        path,
        session_ttl=DAY,
        history_limit=50,
        retention=retention,
        clock=clock or utcnow,
    )


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "chat.db"


@pytest.fixture
async def store(database: Path) -> AsyncIterator[SQLiteStore]:
    opened = make_store(database)
    await opened.start()
    yield opened
    await opened.close()


# -- the file --------------------------------------------------------------------


async def test_the_file_is_private_and_in_wal_mode(store: SQLiteStore, database: Path) -> None:
    assert _mode(database) & 0o077 == 0
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == VERSION


async def test_a_file_of_schema_3_gets_the_hand_off_and_keeps_its_conversations(
    database: Path,
) -> None:
    previous = 3  # before a person could join a conversation (migration 4)
    with sqlite3.connect(database) as old:
        for version, sql in MIGRATIONS:
            if version <= previous:
                old.executescript(sql)
        old.execute(f"PRAGMA user_version = {previous}")
        old.execute(
            "INSERT INTO sessions VALUES ('kept', 'anna', ?, '{}', 1700000000.5, 1700000000.5, "
            "1700000001.25, 2, 2, 2, 'abcdef012345')",
            (record(token="tok").token_hash,),
        )
        for number, body in enumerate([user_message("hello", "c-1"), reply(2, 1, "hi!")], 1):
            old.execute(
                "INSERT INTO messages VALUES ('kept', ?, ?)",
                (number, body.model_copy(update={"id": number}).model_dump_json()),
            )

    store = make_store(database, retention=None)
    await store.start()
    try:
        kept = await store.get_session("kept")
        assert kept is not None
        assert (kept.hold, kept.waiting_since, kept.read_by_operator) == (None, None, 0)
        await store.touch_session("kept", incarnation="abcdef012345")
        until = utcnow() + timedelta(minutes=2)
        assert (await store.take_hold("kept", "Anna", until=until)).taken
        await store.add_note("kept", Note(operator="Anna", content="VIP", timestamp=utcnow()))
        reacted = await store.react("kept", 2, "up", agent="coordinator")
        assert reacted is not None
        assert (reacted.before, reacted.now) == (None, "up")
    finally:
        await store.close()
    store = make_store(database, retention=None)  # and all of it is in the file
    await store.start()
    try:
        again = await store.get_session("kept")
        assert again is not None
        assert again.hold is not None
        assert again.hold.operator == "Anna"
        assert [n.content for n in await store.notes("kept")] == ["VIP"]
        messages, _ = await store.history("kept", after=None, limit=10)
        assert [m.reaction for m in messages] == [None, "up"]
        assert [(t.agent, t.up) for t in await store.reaction_totals()] == [("coordinator", 1)]
    finally:
        await store.close()


async def test_a_file_of_the_previous_schema_keeps_its_messages_in_their_new_table(
    database: Path,
) -> None:
    previous = VERSION - 1  # messages clustered by session (before migration 5)
    assert previous == 4
    with sqlite3.connect(database) as old:
        for version, sql in MIGRATIONS:
            if version <= previous:
                old.executescript(sql)
        old.execute(f"PRAGMA user_version = {previous}")
        for sid in ("a", "b"):
            old.execute(
                "INSERT INTO sessions VALUES (?, NULL, ?, '{}', 1700000000.5, 1700000000.5, "
                "1700000001.25, 2, 2, 2, 'abcdef012345')",
                (sid, record(token="tok").token_hash),
            )
            for number, body in enumerate([user_message(f"hello {sid}"), reply(2, 1, "hi!")], 1):
                old.execute(
                    "INSERT INTO messages VALUES (?, ?, ?)",
                    (sid, number, body.model_copy(update={"id": number}).model_dump_json()),
                )

    store = make_store(database, retention=None)
    await store.start()
    try:
        for sid in ("a", "b"):
            messages, _ = await store.history(sid, after=None, limit=10, touch=False)
            assert [(m.id, m.content) for m in messages] == [(1, f"hello {sid}"), (2, "hi!")]
        fresh = await store.add_user_message("a", user_message("more"))
        assert (fresh.message.id, fresh.reply_id) == (3, 4)
        assert [sid for sid, _ in await store.erase(session_id="b")] == ["b"]
    finally:
        await store.close()
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == VERSION
        rows = connection.execute("SELECT session_id, id FROM messages ORDER BY n").fetchall()
        assert rows == [("a", 1), ("a", 2), ("a", 3)]


async def test_a_file_of_schema_2_is_migrated_with_its_conversations(database: Path) -> None:
    previous = 2  # before incarnations (migration 3)
    with sqlite3.connect(database) as old:  # what the previous version made
        for version, sql in MIGRATIONS:
            if version <= previous:
                old.executescript(sql)
        old.execute(f"PRAGMA user_version = {previous}")
        old.execute(
            "INSERT INTO sessions VALUES ('kept', 'anna', ?, '{\"ip_address\": \"10.0.0.1\"}', "
            "1700000000.5, 1700000000.5, 1700000001.25, 2, 2, 2)",
            (record(token="tok").token_hash,),
        )
        for number, body in enumerate([user_message("hello", "c-1"), reply(2, 1, "hi!")], 1):
            old.execute(
                "INSERT INTO messages VALUES ('kept', ?, ?)",
                (number, body.model_copy(update={"id": number}).model_dump_json()),
            )
        old.execute("INSERT INTO seen VALUES ('kept', 'c-1', 1)")

    store = make_store(database, retention=None)
    await store.start()
    try:
        kept = await store.get_session("kept")
        assert kept is not None
        assert (kept.user_id, kept.client_info.ip_address, kept.message_count) == (
            "anna",
            "10.0.0.1",
            2,
        )
        assert kept.token_matches("tok")
        assert kept.last_activity.timestamp() == 1700000001.25
        # A kept session gets an incarnation of its own, and is that one from now on.
        assert len(kept.incarnation) == 12
        with pytest.raises(SessionReplaced):
            await store.touch_session("kept", incarnation="an-earlier-one")
        await store.touch_session("kept", incarnation=kept.incarnation)
        messages, _ = await store.history("kept", after=None, limit=10)
        assert [(m.id, m.content) for m in messages] == [(1, "hello"), (2, "hi!")]
        again = await store.add_user_message("kept", user_message("hello", "c-1"))
        assert again.duplicate
        fresh = await store.add_user_message("kept", user_message("more"))
        assert (fresh.message.id, fresh.reply_id) == (3, 4)
        assert await store.erase(user_id="anna") == [("kept", kept.incarnation)]
    finally:
        await store.close()
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == VERSION
        indexes = {row[1] for row in connection.execute("PRAGMA index_list(sessions)")}
        assert "sessions_by_user" in indexes


@pytest.mark.parametrize(
    ("make", "complaint"),
    [
        (lambda path: _with_version(path, VERSION + 1), "was written by a newer ChatBuddy"),
        (lambda path: path.write_bytes(b"not a database at all" * 100), "is not a readable"),
        (lambda path: _foreign(path), "is an SQLite database but not ChatBuddy's"),
    ],
    ids=["newer", "corrupt", "foreign"],
)
async def test_a_file_it_cannot_use_is_refused_in_one_line_and_left_untouched(
    database: Path, make: object, complaint: str
) -> None:
    make(database)  # type: ignore[operator]
    before = _bytes(database)
    store = make_store(database)
    with pytest.raises(StoreFileError) as refused:
        await store.start()
    assert complaint in str(refused.value)
    assert str(database) in str(refused.value)
    assert "\n" not in str(refused.value)
    assert _bytes(database) == before
    # ...and the lock was let go: a fixed file opens.
    _bytes(database, remove=True)
    await store.start()
    await store.close()


def _mode(path: Path) -> int:
    return path.stat().st_mode


def _bytes(path: Path, *, remove: bool = False) -> bytes:
    """What the file holds (and, with ``remove``, it removed)."""
    content = path.read_bytes()
    if remove:
        path.unlink()
    return content


def _with_version(path: Path, version: int) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {version}")


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")


async def test_a_file_another_program_locks_is_a_clear_error(database: Path) -> None:
    with sqlite3.connect(database, isolation_level=None) as other:
        other.execute("PRAGMA journal_mode = DELETE")
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreFileError, match="is locked by another program"):
            await make_store(database).start()
        other.execute("ROLLBACK")


async def test_one_file_serves_one_store_at_a_time(store: SQLiteStore, database: Path) -> None:
    with pytest.raises(StoreFileError, match="is in use by another ChatBuddy"):
        await make_store(database).start()


async def test_a_failed_write_is_unavailable_storage_and_the_next_one_works(
    store: SQLiteStore, database: Path
) -> None:
    await store.create_session(record())
    with sqlite3.connect(database, isolation_level=None) as other:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock past the busy timeout
        with pytest.raises(StorageUnavailable):
            await store.add_user_message("s1", user_message("lost"))
        assert not store.ready()
        other.execute("ROLLBACK")
    added = await store.add_user_message("s1", user_message("kept"))
    assert store.ready()
    assert added.message.id == 1  # the failed write was not acknowledged: its id is free
    messages, _ = await store.history("s1", after=None, limit=10)
    assert [m.content for m in messages] == ["kept"]


async def test_a_reply_whose_commit_failed_is_answered_again_on_a_resend(
    store: SQLiteStore, database: Path
) -> None:
    await store.create_session(record())
    first = await store.add_user_message("s1", user_message("q", "c-1"))
    assert first.reply_id == 2
    with sqlite3.connect(database, isolation_level=None) as other:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock past the busy timeout
        with pytest.raises(StorageUnavailable):
            await store.add_reply("s1", reply(2, 1, "lost"))
        other.execute("ROLLBACK")
    # The reply was not stored, so its lease ended with the failure: no waiting
    # LEASE_SECONDS for a reply that will never come.
    again = await store.add_user_message("s1", user_message("q", "c-1"))
    assert (again.resent, again.reply_id, again.message.content) == (True, 2, "q")


async def test_a_resend_after_a_restart_is_answered_if_its_reply_was_never_stored(
    database: Path,
) -> None:
    store = make_store(database)
    await store.start()
    await store.create_session(record())
    await store.add_user_message("s1", user_message("answered", "c-1"))
    await store.add_reply("s1", reply(2, 1, "here you are"))
    await store.add_user_message("s1", user_message("cut off", "c-2"))  # then the crash
    await store.close()

    restarted = make_store(database)
    await restarted.start()
    try:
        # The lease of the reply in progress died with the process that held it.
        orphan = await restarted.add_user_message("s1", user_message("cut off", "c-2"))
        assert (orphan.resent, orphan.reply_id, orphan.message.id) == (True, 4, 3)
        meanwhile = await restarted.add_user_message("s1", user_message("cut off", "c-2"))
        assert (meanwhile.resent, meanwhile.reply_id) == (True, None)  # it is leased again
        answered = await restarted.add_user_message("s1", user_message("answered", "c-1"))
        assert answered.reply is not None
        assert (answered.reply_id, answered.reply.content) == (None, "here you are")
    finally:
        await restarted.close()


async def test_many_writers_share_transactions(store: SQLiteStore, database: Path) -> None:
    for n in range(20):
        await store.create_session(record(f"s{n}"))
    before = _frames(database)
    await asyncio.gather(
        *(store.add_user_message(f"s{n}", user_message(f"m{n}")) for n in range(20))
    )
    # 20 messages, each acknowledged after its commit, in far fewer commits than 20.
    assert _frames(database) - before < 20 * 3


def _committed_contents(database: Path) -> list[str]:
    """What another connection reads: only what is committed."""
    with contextlib.closing(sqlite3.connect(database)) as other:
        rows = other.execute("SELECT body FROM messages ORDER BY id").fetchall()
    return [StoredMessage.model_validate_json(body).content for (body,) in rows]


async def test_a_deferred_message_is_committed_with_its_reply_in_one_transaction(
    store: SQLiteStore, database: Path
) -> None:
    await store.create_session(record())
    added = await store.add_user_message("s1", user_message("q"), defer=True)
    assert added.stored is not None
    assert added.reply_id == 2
    assert _committed_contents(database) == []  # not durable yet: nobody was told
    before = _frames(database)
    await store.add_reply("s1", reply(2, 1, "a"))
    assert _committed_contents(database) == ["q", "a"]
    # One transaction: the session's index page and the table's last page once each,
    # where two commits would write each of them twice.
    assert _frames(database) - before <= 3
    await added.stored()  # already durable: returns at once


async def test_a_deferred_message_without_a_reply_is_committed_at_the_end_of_the_turn(
    store: SQLiteStore, database: Path
) -> None:
    await store.create_session(record())
    added = await store.add_user_message("s1", user_message("held"), defer=True)
    assert added.stored is not None
    await added.stored()
    assert _committed_contents(database) == ["held"]


async def test_when_a_deferred_message_fails_its_reply_is_refused_and_not_written(
    store: SQLiteStore, database: Path
) -> None:
    await store.create_session(record())
    with sqlite3.connect(database, isolation_level=None) as other:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock past the busy timeout
        added = await store.add_user_message("s1", user_message("lost", "c-1"), defer=True)
        assert added.stored is not None
        with pytest.raises(StorageUnavailable):
            await added.stored()
        other.execute("ROLLBACK")
    with pytest.raises(StorageUnavailable):
        await store.add_reply("s1", reply(2, 1, "never stored"))
    assert _committed_contents(database) == []
    # Neither was acknowledged: a resend is a new message, under the same id.
    again = await store.add_user_message("s1", user_message("lost", "c-1"))
    assert (again.resent, again.message.id, again.reply_id) == (False, 1, 2)


async def test_a_reply_in_the_same_failed_transaction_as_its_message_fails_with_it(
    store: SQLiteStore, database: Path
) -> None:
    await store.create_session(record())
    with sqlite3.connect(database, isolation_level=None) as other:
        other.execute("BEGIN IMMEDIATE")
        await store.add_user_message("s1", user_message("q"), defer=True)
        with pytest.raises(StorageUnavailable):
            await store.add_reply("s1", reply(2, 1, "a"))
        other.execute("ROLLBACK")
    assert _committed_contents(database) == []


def _all_bytes(database: Path) -> bytes:
    """The database file, its WAL and everything else beside it."""
    return b"".join(path.read_bytes() for path in database.parent.iterdir())


def _frames(database: Path) -> int:
    wal = database.with_name(database.name + "-wal")
    return (wal.stat().st_size - 32) // (4096 + 24) if wal.exists() else 0


# -- retention ---------------------------------------------------------------------


async def test_retention_removes_only_transcripts_idle_longer_than_it(database: Path) -> None:
    clock = FakeClock()
    store = make_store(database, clock, retention=90 * DAY)
    await store.start()
    try:
        await store.create_session(record("old", now=clock.now))
        await store.add_user_message("old", user_message("forget me"))
        await store.create_session(record("in-use", now=clock.now))
        clock.advance(2 * DAY)
        await store.create_session(record("recent", now=clock.now))
        clock.advance(89 * DAY)
        await store.touch_session("in-use")  # active in memory, not yet in the file
        assert await store.sweep_expired() == 1
        assert await store.get_session("old") is None
        assert await store.get_session("recent") is not None
        assert await store.get_session("in-use") is not None
    finally:
        await store.close()


async def test_retention_works_in_small_batches_that_let_the_loop_run(database: Path) -> None:
    clock = FakeClock()
    store = make_store(database, clock, retention=DAY)
    await store.start()
    try:
        count = 3 * RETENTION_BATCH + 1
        for n in range(count):
            await store.create_session(record(f"s{n}", now=clock.now))
        clock.advance(2 * DAY)
        turns = 0
        sweeping = asyncio.create_task(store.sweep_expired())
        while not sweeping.done():
            turns += 1
            await asyncio.sleep(0)
        assert sweeping.result() == count
        assert turns >= 4  # the loop ran between the batches
        assert (await store.list_sessions(offset=0, limit=10))[1] == 0
    finally:
        await store.close()


async def test_with_retention_keep_nothing_is_removed(database: Path) -> None:
    clock = FakeClock()
    store = make_store(database, clock, retention=None)
    await store.start()
    try:
        await store.create_session(record("old", now=clock.now))
        clock.advance(3650 * DAY)
        assert await store.sweep_expired() == 0
        assert await store.get_session("old") is not None
    finally:
        await store.close()


async def test_an_open_tab_keeps_a_kept_session_live_and_only_live_ones_count(
    database: Path,
) -> None:
    clock = FakeClock()
    store = make_store(database, clock)
    await store.start()
    try:
        await store.create_session(record("open-tab", now=clock.now))
        await store.create_session(record("idle", now=clock.now))
        incarnation = (await store.get_session("open-tab")).incarnation  # type: ignore[union-attr]
        clock.advance(2 * DAY)
        await store.sweep_expired()  # both leave memory; the file keeps them
        assert await store.count_sessions() == 0
        # Past its TTL the session is still kept (it can be resumed): not gone.
        assert await store.keep_alive([("open-tab", incarnation), ("idle", "earlier")]) == [
            ("idle", True)
        ]
        listed, total = await store.list_sessions(offset=0, limit=10)
        assert ([r.session_id for r in listed], total) == (["open-tab"], 1)
        clock.advance(sqlite_store.COUNT_EVERY)  # the count of a moment ago is reused until
        assert await store.count_sessions() == 1
    finally:
        await store.close()


async def test_sessions_rows_are_written_in_small_transactions_chat_commits_between(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_base, "ROWS_BATCH", 5)
    for n in range(11):
        await store.create_session(record(f"s{n}"))
    pairs = [(f"s{n}", (await store.get_session(f"s{n}")).incarnation) for n in range(11)]  # type: ignore[union-attr]
    assert await store.keep_alive(pairs) == []  # activity in memory at once
    listing = asyncio.create_task(store.list_sessions(offset=0, limit=20))
    await asyncio.sleep(0)  # it writes the first five rows before it reads
    await store.add_user_message("s10", user_message("meanwhile"))
    assert not listing.done()  # the message did not wait for all eleven
    listed, total = await listing
    assert total == 11
    kept = {r.session_id: r.last_activity for r in listed}
    assert all(kept[sid] == store._live[sid].record.last_activity for sid, _ in pairs)


async def test_messages_past_the_history_limit_leave_the_file_with_the_next_rows(
    store: SQLiteStore, database: Path
) -> None:
    await store.create_session(record())
    for n in range(60):  # the limit is 50
        await store.add_user_message("s1", user_message(f"m{n}"))
    history, _ = await store.history("s1", after=0, limit=100)
    assert [m.content for m in history] == [f"m{n}" for n in range(10, 60)]
    await store.list_sessions(offset=0, limit=1)  # writes the rows that are behind
    with sqlite3.connect(database) as connection:
        kept = connection.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert kept == 50


async def test_a_busy_session_sheds_its_oldest_messages_with_its_own_commits(
    store: SQLiteStore, database: Path
) -> None:
    await store.create_session(record())
    for n in range(50 + sqlite_base.TRIM_SLACK + 1):  # the limit is 50
        await store.add_user_message("s1", user_message(f"m{n}"))
    # Dropped with the commit of the message that took it past the slack, not in a
    # transaction of every session's rows a second later.
    with sqlite3.connect(database) as connection:
        kept = connection.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert kept == 50


async def test_a_failed_write_loses_no_session_rows_and_retention_spares_the_active(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_base, "ROWS_EVERY", 3600.0)  # rows only when asked for
    clock = FakeClock()
    store = make_store(database, clock, retention=7 * DAY)
    await store.start()
    try:
        for sid in ("s1", "other", "idle"):
            await store.create_session(record(sid, now=clock.now))
        clock.advance(6 * DAY)  # the customer comes back on day 6
        await store.add_user_message("s1", user_message("day 6 question"))
        with sqlite3.connect(database, isolation_level=None) as other_program:
            other_program.execute("BEGIN IMMEDIATE")  # holds the write lock: a write fails
            with pytest.raises(StorageUnavailable):
                await store.add_user_message("other", user_message("x"))
            other_program.execute("ROLLBACK")
        listed, _ = await store.list_sessions(offset=0, limit=10)  # writes the rows first
        counts = {r.session_id: r.message_count for r in listed}  # live ones: active today
        assert counts == {"s1": 1, "other": 0}  # other's failed message is not counted
    finally:
        await store.close()
    store = make_store(database, clock, retention=7 * DAY)
    await store.start()
    try:
        clock.advance(1.5 * DAY)  # day 7.5: s1 was active 1.5 days ago, `idle` 7.5
        assert await store.sweep_expired() == 1
        assert await store.get_session("s1") is not None
        assert await store.get_session("idle") is None
    finally:
        await store.close()


async def test_a_session_read_twice_while_its_row_is_behind_keeps_its_whole_history(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_base, "ROWS_EVERY", 3600.0)  # rows only when asked for
    store = SQLiteStore(database, session_ttl=DAY, history_limit=3, retention=None)
    await store.start()
    try:
        await store.create_session(record())
        for n in range(1, 7):  # six messages; the row and the trim to three are pending
            await store.add_user_message("s1", user_message(f"m{n}"))
        with sqlite3.connect(database, isolation_level=None) as other_program:
            other_program.execute("BEGIN IMMEDIATE")
            with pytest.raises(StorageUnavailable):  # memory of the session is dropped
                await store.add_user_message("s1", user_message("lost"))
            other_program.execute("ROLLBACK")
        await store.get_session("s1")  # read from the file, not loaded
        rows_round = asyncio.create_task(store.list_sessions(offset=0, limit=1))
        await asyncio.sleep(0)  # the rows round has the session's row and its trim
        await store.add_user_message("s1", user_message("m7"))  # loads it meanwhile
        await rows_round
        history, _ = await store.history("s1", after=0, limit=10)
        assert [m.content for m in history] == ["m5", "m6", "m7"]
    finally:
        await store.close()


def as_left_by_a_kill(database: Path, folder: Path) -> Path:
    """A copy of the database file and its WAL, as the disk holds them after a kill -9
    of the process that has them open (it stays open); the copy's database file."""
    folder.mkdir()
    for name in (database.name, database.name + "-wal"):
        (folder / name).write_bytes((database.parent / name).read_bytes())
    return folder / database.name


@pytest.mark.parametrize("opened_since", [False, True], ids=["as-left", "opened-since"])
async def test_a_session_row_a_crash_left_behind_its_messages_is_caught_up_from_them(
    database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened_since: bool
) -> None:
    # Rows are written a second after their messages; the crash comes before that.
    monkeypatch.setattr(sqlite_base, "ROWS_EVERY", 3600.0)
    monkeypatch.setattr(checkpoints, "EVERY", 3600.0)
    store = make_store(database)
    await store.start()
    try:
        await store.create_session(record())
        await store.add_user_message("s1", user_message("answered", "c-1"))
        await store.add_reply("s1", reply(2, 1, "here you are"))
        await store.add_user_message("s1", user_message("cut off", "c-2"))
        crashed = as_left_by_a_kill(database, tmp_path / "crashed")
    finally:
        await store.close()
    if opened_since:  # an administrator's sqlite3 (or a backup) took the WAL into the file
        with contextlib.closing(sqlite3.connect(crashed)) as look:
            look.execute("SELECT count(*) FROM messages").fetchone()
        assert not crashed.with_name("chat.db-wal").exists()

    restarted = make_store(crashed)
    await restarted.start()
    try:
        listed, _ = await restarted.list_sessions(offset=0, limit=10)
        assert [(r.message_count, r.last_message_id) for r in listed] == [(3, 3)]
        # The reply to the message cut off keeps its id; new messages come after it.
        orphan = await restarted.add_user_message("s1", user_message("cut off", "c-2"))
        assert (orphan.resent, orphan.reply_id) == (True, 4)
        after = await restarted.add_user_message("s1", user_message("and then"))
        assert (after.message.id, after.reply_id) == (5, 6)
    finally:
        await restarted.close()


async def test_a_slow_reply_stored_after_a_later_message_is_counted_after_a_crash(
    database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_base, "ROWS_EVERY", 3600.0)
    monkeypatch.setattr(checkpoints, "EVERY", 3600.0)
    store = make_store(database)
    await store.start()
    try:
        await store.create_session(record())
        slow = await store.add_user_message("s1", user_message("slow question"))  # 1, reply 2
        fast = await store.add_user_message("s1", user_message("fast question"))  # 3, reply 4
        await store.add_reply("s1", reply(4, fast.message.id, "fast answer"))
        await store.list_sessions(offset=0, limit=1)  # the rows are written: last id 4
        await store.add_reply("s1", reply(2, slow.message.id, "slow answer"))
        crashed = as_left_by_a_kill(database, tmp_path / "crashed")
    finally:
        await store.close()
    restarted = make_store(crashed)
    await restarted.start()
    try:
        listed, _ = await restarted.list_sessions(offset=0, limit=1)
        history, _ = await restarted.history("s1", after=0, limit=10, touch=False)
        assert [m.id for m in history] == [1, 2, 3, 4]
        assert listed[0].message_count == 4
    finally:
        await restarted.close()


async def test_the_count_of_live_sessions_is_reused_briefly_and_counts_new_ones(
    database: Path,
) -> None:
    clock = FakeClock()
    store = make_store(database, clock)
    await store.start()
    try:
        for sid in ("a", "b", "c"):
            await store.create_session(record(sid, now=clock.now))
        assert await store.count_sessions() == 3
        await store.create_session(record("d", now=clock.now))
        assert await store.count_sessions() == 4  # counted again only after COUNT_EVERY
        clock.advance(2 * DAY)
        assert await store.count_sessions() == 0
    finally:
        await store.close()


async def test_a_session_past_its_ttl_is_no_longer_listed_but_can_be_resumed(
    database: Path,
) -> None:
    clock = FakeClock()
    store = make_store(database, clock)
    await store.start()
    try:
        await store.create_session(record("yesterday", now=clock.now))
        clock.advance(2 * DAY)
        await store.sweep_expired()
        assert await store.list_sessions(offset=0, limit=10) == ([], 0)
        assert await store.touch_session("yesterday", connected=True)
        listed, total = await store.list_sessions(offset=0, limit=10)
        assert ([r.session_id for r in listed], total) == (["yesterday"], 1)
    finally:
        await store.close()


# -- erasure -------------------------------------------------------------------------


async def test_an_erased_conversation_leaves_no_trace_in_the_file_or_the_wal(
    store: SQLiteStore, database: Path
) -> None:
    for sid, user, text in (("a", "anna", "anna-secret-4711"), ("b", "bob", "bob-keeps-0815")):
        session = record(sid)
        session.user_id = user
        await store.create_session(session)
        for n in range(30):
            await store.add_user_message(sid, user_message(f"{text} #{n}", f"{sid}-{n}"))
    # Some of it reached the file by a checkpoint before the erasure, some is in the WAL.
    with sqlite3.connect(database) as other:
        other.execute("PRAGMA wal_checkpoint(PASSIVE)")
    await store.add_user_message("a", user_message("anna-secret-4711 last", "a-last"))

    assert [sid for sid, _ in await store.erase(user_id="anna")] == ["a"]
    on_disk = _all_bytes(database)
    assert b"anna-secret-4711" not in on_disk
    assert b"a-last" not in on_disk
    assert b"bob-keeps-0815" in on_disk
