"""What only the in-memory store does: expiry on an injected clock."""

from __future__ import annotations

import pytest

from chatbuddy.engine import MemoryStore
from chatbuddy.errors import SessionNotFound
from tests.builders import record
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


def test_the_token_is_kept_only_as_a_hash_and_shown_nowhere() -> None:
    kept = record(token="super-secret-token")
    assert kept.token_hash != "super-secret-token"
    assert kept.token_matches("super-secret-token")
    assert "super-secret-token" not in repr(kept)
    assert kept.token_hash not in repr(kept)
