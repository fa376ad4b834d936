"""The Redis store's shared state and what its parts read back from Redis.

``StoreBase`` holds the connection, the key names and the clock, and runs the
hot-path scripts; the functions below read scripts' and commands' replies.
``handoff_store.py`` adds the hand-off to a person on top of it, and
``store.py`` sessions and history: ``RedisStore``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from chatbuddy.engine.redis.connection import RedisConnection
from chatbuddy.engine.redis.endpoint import Arg
from chatbuddy.engine.redis.keys import Keys
from chatbuddy.errors import SessionNotFound, SessionReplaced
from chatbuddy.records import ClientInfo, Hold, SessionRecord, utcnow

#: Seconds between updates of a session's place in the "most recent first" index.
INDEX_EVERY = 10.0


class StoreBase:
    """The state and the helpers the parts of :class:`RedisStore` share."""

    def __init__(
        self,
        connection: RedisConnection,
        *,
        keys: Keys,
        channel_of: Callable[[str], str],
        session_ttl: float,
        history_limit: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # Commands go through here; the store owns it and closes it.
        self._redis = connection
        # Key names under the deployment's prefix.
        self._keys = keys
        # The bus's channel of a session: the scripts publish to it.
        self._channel_of = channel_of
        # Sliding session expiry, in milliseconds, as Redis wants it.
        self._ttl_ms = int(session_ttl * 1000)
        # Messages kept per session.
        self._history_limit = history_limit
        # Timestamps come from here (injected in tests).
        self._clock = clock
        # session id -> when this node last moved it up the session index; the
        # index orders a listing, so once per INDEX_EVERY seconds is enough.
        self._indexed: dict[str, float] = {}

    async def start(self) -> None:
        """Nothing to do before the first command: connections are made on use."""

    async def close(self) -> None:
        await self._redis.close()

    def ready(self) -> bool:
        """The bus's heartbeat knows whether Redis answers; the store has no view of its own."""
        return True

    def _now(self) -> tuple[str, float]:
        now = self._clock()
        return now.isoformat(), now.timestamp()

    def _index_due(self, session_id: str) -> bool:
        now = time.monotonic()
        if now - self._indexed.get(session_id, 0.0) < INDEX_EVERY:
            return False
        self._indexed[session_id] = now
        return True

    async def _step(self, name: str, session_id: str, args: list[Any]) -> Any:
        """One hot-path script; now and then also moves the session up the index."""
        keys = self._keys.session(session_id)
        if not self._index_due(session_id):
            return await self._redis.script(name, keys, args)
        stamp = self._clock().timestamp()
        also = [("ZADD", self._keys.index, "XX", stamp, session_id)]
        return (await self._redis.script_with(name, keys, args, also))[0]


def checked(session_id: str, status: int) -> int:
    """A script's status: -1 the session is gone, -2 its id belongs to another one."""
    if status == -1:
        raise SessionNotFound(session_id)
    if status == -2:
        raise SessionReplaced(session_id)
    return status


def scored_args(sessions: Sequence[tuple[str, str]], stamp: float) -> list[Arg]:
    """ZADD's score-member arguments: every session at ``stamp``."""
    scored: list[Arg] = []
    for session_id, _ in sessions:
        scored += [stamp, session_id]
    return scored


def pairs(flat: list[str] | dict[str, str]) -> dict[str, str]:
    """HGETALL's reply as a dict (a flat list over RESP2, a map where a client decodes it)."""
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))


def hold_of(fields: list[Any]) -> Hold | None:
    """A hold from a script's ``{operator, since, until, ...}`` (``{}``: none)."""
    if not fields:
        return None
    return Hold(
        operator=fields[0],
        since=datetime.fromisoformat(fields[1]),
        until=datetime.fromisoformat(fields[2]),
    )


def record_of(session_id: str, raw: dict[str, str]) -> SessionRecord:
    static = json.loads(raw["record"])
    last_id = raw.get("last_message_id")
    hold = None
    if raw.get("hold_operator"):
        hold = hold_of([raw["hold_operator"], raw["hold_since"], raw["hold_until"]])
    waiting = raw.get("waiting_since")
    return SessionRecord(
        session_id=session_id,
        user_id=static["user_id"],
        client_info=ClientInfo(**static["client_info"]),
        created_at=datetime.fromisoformat(static["created_at"]),
        connected_at=datetime.fromisoformat(raw["connected_at"]),
        last_activity=datetime.fromisoformat(raw["last_activity"]),
        message_count=int(raw.get("message_count", 0)),
        last_message_id=int(last_id) if last_id else None,
        token_hash=static["token_hash"],
        incarnation=raw.get("incarnation", ""),
        hold=hold,
        waiting_since=datetime.fromisoformat(waiting) if waiting else None,
        read_by_customer=int(raw.get("read_customer", 0)),
        read_by_operator=int(raw.get("read_operator", 0)),
    )
