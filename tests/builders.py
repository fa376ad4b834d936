"""Things tests build: engines of either kind, session records, stored messages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from chatbuddy.engine import Engine, LocalBus, MemoryStore
from chatbuddy.engine.redis import redis_pair
from chatbuddy.engine.sqlite import SQLiteStore
from chatbuddy.records import ClientInfo, SessionRecord, StoredMessage, utcnow
from chatbuddy.settings import Settings
from chatbuddy.tokens import hash_token

#: Every engine a test can run on; modules parametrize over it.
ENGINE_KINDS = ["memory", "sqlite", "redis"]


def build_engine(
    kind: str,
    *,
    redis_url: str | None = None,
    folder: Path | None = None,
    session_ttl: float = 60,
    history_limit: int = 50,
    retention: float | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Engine:
    """An engine of ``kind`` as a server builds it, with a fast heartbeat for tests.

    A sqlite engine keeps its file in ``folder`` (the test's own tmp_path).
    """
    if kind == "memory":
        store = MemoryStore(session_ttl=session_ttl, history_limit=history_limit, clock=clock)
        return Engine("memory", store, LocalBus())
    if kind == "sqlite":
        assert folder is not None, "a sqlite engine needs a folder of the test's own"
        sqlite_store = SQLiteStore(
            folder / "chatbuddy.db",
            session_ttl=session_ttl,
            history_limit=history_limit,
            retention=retention,
            clock=clock,
        )
        return Engine("sqlite", sqlite_store, LocalBus())
    assert redis_url is not None, "a redis engine needs the redis_url fixture"
    redis_store, bus = redis_pair(
        redis_url,
        session_ttl=session_ttl,
        history_limit=history_limit,
        heartbeat=0.05,
        clock=clock,
    )
    return Engine("redis", redis_store, bus)


def record(
    session_id: str = "s1", token: str = "tok", now: datetime | None = None
) -> SessionRecord:
    now = now or utcnow()
    return SessionRecord(
        session_id=session_id,
        user_id="anna",
        client_info=ClientInfo(ip_address="127.0.0.1", user_agent="pytest"),
        created_at=now,
        connected_at=now,
        last_activity=now,
        token_hash=hash_token(token),
    )


def user_message(content: str = "hi", client_message_id: str | None = None) -> StoredMessage:
    return StoredMessage(
        id=0, role="user", content=content, timestamp=utcnow(), client_message_id=client_message_id
    )


def reply(message_id: int, in_reply_to: int, content: str = "hello") -> StoredMessage:
    return StoredMessage(
        id=message_id,
        role="assistant",
        content=content,
        timestamp=utcnow(),
        in_reply_to=in_reply_to,
        agent="general",
        confidence=0.5,
        metadata={"processing_time": 0.001, "agent": "general"},
    )


def unlimited(**options: Any) -> Settings:
    """Settings with every rate limit off (but those ``options`` set), for tests that
    chat as fast as they can (the limits have tests of their own)."""
    off: dict[str, Any] = {
        "rate_limit": 0,
        "session_rate_limit": 0,
        "ip_rate_limit": 0,
        "frame_rate_limit": 0,
        "new_sessions_per_minute": 0,
    }
    return Settings(**{**off, **options})
