"""What only the in-memory store does: expiry on an injected clock."""

from __future__ import annotations

from typing import Any

import pytest

from chatbuddy.engine import MemoryStore
from chatbuddy.errors import SessionNotFound
from chatbuddy.records import SessionRecord
from tests.builders import record, user_message
from tests.doubles import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(session_ttl=60, history_limit=5, clock=clock)


async def test_a_session_expires_after_the_ttl_without_activity(
    store: MemoryStore, clock: FakeClock
) -> None:
    await store.create_session(record(now=clock.now))
    clock.advance(61)
    assert await store.get_session("s1") is None
    with pytest.raises(SessionNotFound):
        await store.touch_session("s1")
    assert await store.create_session(record(now=clock.now))  # the id is free again


async def test_activity_slides_the_expiry(store: MemoryStore, clock: FakeClock) -> None:
    await store.create_session(record(now=clock.now))
    for _ in range(5):
        clock.advance(50)
        await store.touch_session("s1")
    assert await store.get_session("s1") is not None


async def test_sweeping_removes_only_expired_sessions(store: MemoryStore, clock: FakeClock) -> None:
    await store.create_session(record("old", now=clock.now))
    clock.advance(40)
    await store.create_session(record("new", now=clock.now))
    clock.advance(30)
    assert await store.sweep_expired() == 1
    assert await store.get_session("old") is None
    assert await store.get_session("new") is not None


async def test_every_kind_of_activity_moves_a_session_to_the_top_of_the_listing(
    store: MemoryStore, clock: FakeClock
) -> None:
    # The listing reads the newest from the end of an activity-ordered dict, so
    # each kind of activity must move its session there.
    for sid in ("a", "b", "c", "d", "e"):
        await store.create_session(record(sid, now=clock.now))
    incarnation = (await store.get_session("b")).incarnation  # type: ignore[union-attr]
    steps = [
        ("a", store.touch_session("a")),
        ("b", store.keep_alive([("b", incarnation)])),
        ("c", store.add_user_message("c", user_message("hi"))),
        ("d", store.history("d", after=None, limit=1)),
    ]
    for sid, step in steps:
        clock.advance(1)
        await step
        listed, _ = await store.list_sessions(offset=0, limit=1)
        assert [r.session_id for r in listed] == [sid]
    listed, total = await store.list_sessions(offset=0, limit=10)
    assert ([r.session_id for r in listed], total) == (["d", "c", "b", "a", "e"], 5)
    page, _ = await store.list_sessions(offset=1, limit=2)
    assert [r.session_id for r in page] == ["c", "b"]


async def test_expired_sessions_are_neither_listed_nor_counted(
    store: MemoryStore, clock: FakeClock
) -> None:
    await store.create_session(record("old", now=clock.now))
    clock.advance(40)
    await store.create_session(record("new", now=clock.now))
    clock.advance(30)
    listed, total = await store.list_sessions(offset=0, limit=10)
    assert ([r.session_id for r in listed], total) == (["new"], 1)
    assert await store.count_sessions() == 1


async def test_a_page_of_the_listing_reads_only_its_sessions(
    store: MemoryStore, clock: FakeClock
) -> None:
    for n in range(2000):
        await store.create_session(record(f"s{n}", now=clock.now))
    read = CountingRecords(store)
    listed, total = await store.list_sessions(offset=10, limit=5)
    assert ([r.session_id for r in listed], total) == (
        [f"s{n}" for n in range(1989, 1984, -1)],
        2000,
    )
    assert read.count <= 16  # the sweep's first look, the offset and the page; not 2000


class CountingRecords:
    """Counts how many sessions' records the store reads, by wrapping each session."""

    def __init__(self, store: MemoryStore) -> None:
        # How many times a session's record was read.
        self.count = 0
        sessions: dict[str, Any] = store._sessions  # the cost is what is tested
        for sid, session in sessions.items():
            sessions[sid] = _Counted(session, self)


class _Counted:
    def __init__(self, session: Any, counter: CountingRecords) -> None:
        # The session wrapped.
        self._session = session
        # Told of every read of the record.
        self._counter = counter

    @property
    def record(self) -> SessionRecord:
        self._counter.count += 1
        record: SessionRecord = self._session.record
        return record


def test_the_token_is_kept_only_as_a_hash_and_shown_nowhere() -> None:
    kept = record(token="super-secret-token")
    assert kept.token_hash != "super-secret-token"
    assert kept.token_matches("super-secret-token")
    assert "super-secret-token" not in repr(kept)
    assert kept.token_hash not in repr(kept)
