"""The Redis engine: a store and a bus that let many nodes act as one service.

No redis-py: ``client.py`` auto-pipelines commands and ``subscriber.py`` reads
pub/sub, over hiredis' C parser (imported by ``endpoint.py`` alone); keys,
scripts, the store and the bus are plain Python over them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chatbuddy.engine.redis.bus import RedisBus
from chatbuddy.engine.redis.connection import RedisConnection
from chatbuddy.engine.redis.keys import Keys
from chatbuddy.engine.redis.store import RedisStore
from chatbuddy.records import utcnow


def redis_pair(
    url: str,
    *,
    session_ttl: float,
    history_limit: int,
    prefix: str = "chatbuddy:",
    heartbeat: float = 1.0,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[RedisStore, RedisBus]:
    """A store and a bus sharing one connection to the Redis at ``url``."""
    connection = RedisConnection(url)
    keys = Keys(prefix)
    bus = RedisBus(connection, keys=keys, heartbeat=heartbeat)
    store = RedisStore(
        connection,
        keys=keys,
        channel_of=bus.session_channel,
        session_ttl=session_ttl,
        history_limit=history_limit,
        clock=clock,
    )
    return store, bus


__all__ = ["Keys", "RedisBus", "RedisConnection", "RedisStore", "redis_pair"]
