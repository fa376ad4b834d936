"""The in-memory engine: sessions, sliding expiry, capped ordered history, fan-out."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from chatbuddy.engine import MemoryEngine
from chatbuddy.errors import SessionNotFound
from chatbuddy.records import ClientInfo, SessionRecord, StoredMessage, hash_token, utcnow


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def record(
    session_id: str = "s1", token: str = "tok", now: datetime | None = None
) -> SessionRecord:
    now = now or utcnow()
    return SessionRecord(
        session_id=session_id,
        user_id="anna",
        client_info=ClientInfo(ip_address="127.0.0.1"),
        created_at=now,
        connected_at=now,
        last_activity=now,
        token_hash=hash_token(token),
    )


def message(message_id: int, content: str = "hi") -> StoredMessage:
    return StoredMessage(id=message_id, role="user", content=content, timestamp=utcnow())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> MemoryEngine:
    return MemoryEngine(session_ttl=60, history_limit=5, clock=clock)


async def test_a_session_id_can_be_created_once(engine: MemoryEngine) -> None:
    assert await engine.create_session(record())
    assert not await engine.create_session(record())
    stored = await engine.get_session("s1")
    assert stored is not None
    assert stored.token_matches("tok")
    assert not stored.token_matches("other")
    assert not stored.token_matches(None)


async def test_a_session_expires_after_the_ttl_without_activity(
    engine: MemoryEngine, clock: Clock
) -> None:
    await engine.create_session(record())
    clock.advance(61)
    assert await engine.get_session("s1") is None
    with pytest.raises(SessionNotFound):
        await engine.touch_session("s1")
    assert await engine.create_session(record())  # the id is free again


async def test_activity_slides_the_expiry(engine: MemoryEngine, clock: Clock) -> None:
    await engine.create_session(record())
    for _ in range(5):
        clock.advance(50)
        await engine.touch_session("s1")
    assert await engine.get_session("s1") is not None


async def test_sweeping_removes_only_expired_sessions(engine: MemoryEngine, clock: Clock) -> None:
    await engine.create_session(record("old", now=clock.now))
    clock.advance(40)
    await engine.create_session(record("new", now=clock.now))
    clock.advance(30)
    assert await engine.sweep_expired() == 1
    assert await engine.get_session("old") is None
    assert await engine.get_session("new") is not None


async def test_message_ids_only_grow(engine: MemoryEngine) -> None:
    await engine.create_session(record())
    ids = [await engine.next_message_id("s1") for _ in range(3)]
    assert ids == [1, 2, 3]


async def test_history_is_capped_and_counts_every_message(engine: MemoryEngine) -> None:
    await engine.create_session(record())
    for _ in range(7):
        await engine.append_message("s1", message(await engine.next_message_id("s1")))
    messages, has_more = await engine.history("s1", after=None, limit=200)
    assert [m.id for m in messages] == [3, 4, 5, 6, 7]
    assert not has_more
    stored = await engine.get_session("s1")
    assert stored is not None
    assert (stored.message_count, stored.last_message_id) == (7, 7)


async def test_history_after_an_id_pages_forward(engine: MemoryEngine) -> None:
    await engine.create_session(record())
    for _ in range(5):
        await engine.append_message("s1", message(await engine.next_message_id("s1")))
    page, more = await engine.history("s1", after=1, limit=2)
    assert ([m.id for m in page], more) == ([2, 3], True)
    page, more = await engine.history("s1", after=3, limit=2)
    assert ([m.id for m in page], more) == ([4, 5], False)
    page, more = await engine.history("s1", after=5, limit=2)
    assert (page, more) == ([], False)
    latest, _ = await engine.history("s1", after=None, limit=2)
    assert [m.id for m in latest] == [4, 5]


async def test_a_message_stored_late_keeps_id_order(engine: MemoryEngine) -> None:
    await engine.create_session(record())
    early = await engine.next_message_id("s1")
    late = await engine.next_message_id("s1")
    await engine.append_message("s1", message(late))
    await engine.append_message("s1", message(early))
    messages, _ = await engine.history("s1", after=None, limit=10)
    assert [m.id for m in messages] == [early, late]


async def test_writing_to_a_missing_session_raises(engine: MemoryEngine) -> None:
    with pytest.raises(SessionNotFound):
        await engine.next_message_id("ghost")
    with pytest.raises(SessionNotFound):
        await engine.append_message("ghost", message(1))
    with pytest.raises(SessionNotFound):
        await engine.history("ghost", after=None, limit=1)


async def test_published_frames_reach_the_sink(engine: MemoryEngine) -> None:
    delivered: list[tuple[str, str, str | None]] = []
    await engine.start(
        lambda sid, frame, exclude: delivered.append((sid, frame, exclude)), lambda sid, frame: None
    )
    await engine.subscribe("s1")
    await engine.publish("s1", "frame-1", exclude="c1")
    await engine.publish("s1", "frame-2")
    assert delivered == [("s1", "frame-1", "c1"), ("s1", "frame-2", None)]


def test_the_token_is_stored_only_as_a_hash() -> None:
    dumped = record(token="super-secret-token").model_dump_json()
    assert "super-secret-token" not in dumped
    assert "token_hash" not in dumped
