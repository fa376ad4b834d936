"""Fan-out between nodes over Redis pub/sub; presence by heartbeat.

The generic part (channels, encoding, the listener that reconnects, dispatch)
is :class:`chatbuddy.engine.pubsub.PubSubBus`; this adds Redis's primitives and
a heartbeat: every node writes who is connected to it under a key that expires
after three missed beats, and learns whether any node watches admin events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from chatbuddy.engine.bus import NodeLink, Presence
from chatbuddy.engine.pubsub import Listener, PubSubBus
from chatbuddy.engine.redis.connection import RedisConnection
from chatbuddy.engine.redis.keys import Keys
from chatbuddy.errors import StorageUnavailable

log = logging.getLogger(__name__)


class RedisBus(PubSubBus):
    """A :class:`chatbuddy.engine.bus.Bus` on Redis pub/sub."""

    name = "redis"

    def __init__(self, connection: RedisConnection, *, keys: Keys, heartbeat: float = 1.0) -> None:
        super().__init__(prefix=keys.prefix)
        # Shared with the store, which owns (and closes) it.
        self._redis = connection
        # Node keys live under the deployment's prefix.
        self._keys = keys
        # Seconds between presence heartbeats; a node is gone after three missed.
        self._heartbeat = heartbeat
        # Whether the last heartbeat reached Redis.
        self._heartbeat_ok = False
        # Whether any node listens to admin events (refreshed by the heartbeat).
        self._events_watched_anywhere = False

    async def _publish(self, channel: str, data: str) -> None:
        await self._redis.execute("PUBLISH", channel, data)

    async def _open_listener(self, channels: list[str]) -> Listener:
        return await self._redis.listener(channels)

    # -- lifecycle ------------------------------------------------------------

    async def start(self, node: NodeLink) -> None:
        await super().start(node)
        self._tasks.append(asyncio.create_task(self._beat(), name="redis-heartbeat"))

    async def close(self) -> None:
        await super().close()
        with contextlib.suppress(StorageUnavailable):
            await self._redis.execute_many(
                [("SREM", self._keys.nodes, self.node_id), ("DEL", self._keys.node(self.node_id))]
            )

    def ready(self) -> bool:
        return self._heartbeat_ok and super().ready()

    def events_wanted(self) -> bool:
        return super().events_wanted() or self._events_watched_anywhere

    def _watcher_appeared(self) -> None:
        # Now, not at the next heartbeat: an operator's console on another node must
        # not miss what the customer says in its first second. The heartbeat's count
        # of the events channel's subscribers settles it afterwards.
        self._events_watched_anywhere = True

    # -- presence -------------------------------------------------------------

    async def _beat(self) -> None:
        """Publish this node's presence; learn whether anyone watches events."""
        failing_since: float | None = None
        while True:
            try:
                await self._beat_once()
                if failing_since is not None:
                    log.info("Redis at %s is reachable again", self._redis.where)
                failing_since = None
                self._heartbeat_ok = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._heartbeat_ok = False
                now = time.monotonic()
                if failing_since is None or now - failing_since > 30:
                    log.warning(
                        "Redis at %s is not reachable (%s); retrying every %.0fs",
                        self._redis.where,
                        type(exc).__name__,
                        self._heartbeat,
                    )
                    failing_since = now
            await asyncio.sleep(self._heartbeat)

    async def _beat_once(self) -> None:
        node = self._node
        presence = node.presence() if node is not None else Presence()
        document = json.dumps(
            {
                "connections": presence.connections,
                "sessions": presence.sessions,
                "users": presence.users,
            }
        )
        _, _, numsub = await self._redis.execute_many(
            [
                ("SET", self._keys.node(self.node_id), document, "PX", int(3000 * self._heartbeat)),
                ("SADD", self._keys.nodes, self.node_id),
                ("PUBSUB", "NUMSUB", self.events_channel),
            ]
        )
        # Other nodes' watchers: this node knows its own (counting them kept events
        # wanted here up to a heartbeat after its last tail closed).
        own = 1 if self._watching_events else 0
        self._events_watched_anywhere = _numsub(numsub) - own > 0

    async def cluster_presence(self) -> Presence:
        node = self._node
        local = node.presence() if node is not None else Presence()
        members = await self._redis.execute("SMEMBERS", self._keys.nodes)
        others = [n for n in members if n != self.node_id]
        documents = (
            await self._redis.execute("MGET", *[self._keys.node(n) for n in others])
            if others
            else []
        )
        gone = [n for n, doc in zip(others, documents, strict=True) if doc is None]
        if gone:
            await self._redis.execute("SREM", self._keys.nodes, *gone)
        parts = [local]
        for doc in documents:
            if doc is not None:
                data = json.loads(doc)
                parts.append(Presence(data["connections"], data["sessions"], data["users"]))
        return Presence.merge(parts)


def _numsub(reply: object) -> int:
    """PUBSUB NUMSUB's count for one channel: [channel, count] (or pairs, as parsed)."""
    if isinstance(reply, list) and reply:
        last = reply[-1]
        if isinstance(last, tuple | list):
            return int(last[1])
        return int(last)
    return 0
