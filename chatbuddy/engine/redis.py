"""The Redis engine: sessions, history, fan-out and presence shared by many nodes.

The only module that imports ``redis``. Key layout, channels and round trips
are documented in docs/redis.md; keep the two in step.

Keys of one session share the hash tag ``{session_id}``, so the layout also
works on Redis Cluster (the global session index and node keys aside).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chatbuddy.engine.base import AddedMessage, Frame, NodeLink, Presence, frame_text
from chatbuddy.engine.redis_scripts import SCRIPTS, SHAS
from chatbuddy.errors import SessionNotFound, StorageUnavailable
from chatbuddy.records import ClientInfo, SessionRecord, StoredMessage, utcnow
from chatbuddy.wire.protocol import envelope_parts

log = logging.getLogger(__name__)

#: Client message ids remembered per session, for deduplication.
DEDUP_WINDOW = 1000
#: Seconds between updates of a session's place in the "most recent first" index.
INDEX_EVERY = 10.0
#: Errors that mean "Redis is out of reach" rather than "we sent nonsense".
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisEngine:
    """Sessions in Redis; frames and events fanned out with pub/sub; presence by heartbeat."""

    name = "redis"

    def __init__(
        self,
        *,
        url: str,
        session_ttl: float,
        history_limit: int,
        prefix: str = "chatbuddy:",
        heartbeat: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        # Commands go through this pool; one quick retry covers a stale pooled
        # connection after a Redis restart, then errors surface as StorageUnavailable.
        self._redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
        )
        # Host:port/db for logs, never the password.
        kwargs = self._redis.connection_pool.connection_kwargs
        self._where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
        # Sliding session expiry, in milliseconds, as Redis wants it.
        self._ttl_ms = int(session_ttl * 1000)
        # Messages kept per session.
        self._history_limit = history_limit
        # Namespace of every key and channel, so deployments can share a Redis.
        self._prefix = prefix
        # Seconds between presence heartbeats; a node is gone after three missed.
        self._heartbeat = heartbeat
        # Timestamps come from here (injected in tests).
        self._clock = clock
        # This node's name in presence keys; random, so a restarted node is new.
        self.node_id = secrets.token_hex(6)
        # session id -> when this node last moved it up the session index; the
        # index orders a listing, so once per INDEX_EVERY seconds is enough.
        self._indexed: dict[str, float] = {}
        # This node: where published frames and events go; set by start().
        self._node: NodeLink | None = None
        # channel -> session id, for every session channel this node listens to.
        self._channels: dict[str, str] = {}
        # Whether this node listens to the admin event channel.
        self._watching_events = False
        # Whether any node listens to it (refreshed by the heartbeat).
        self._events_watched_anywhere = False
        # The pub/sub connection (replaced after a reconnect) and its lock.
        self._pubsub: PubSub | None = None
        self._pubsub_lock = asyncio.Lock()
        # Set while the listener has a live subscription; cleared on outage.
        self._listening = asyncio.Event()
        # Whether the last heartbeat reached Redis.
        self._heartbeat_ok = False
        # Background tasks: the pub/sub listener and the heartbeat.
        self._tasks: list[asyncio.Task[None]] = []

    # -- keys -----------------------------------------------------------------

    def _session_keys(self, session_id: str) -> list[str]:
        tag = f"{self._prefix}{{{session_id}}}"
        return [f"{tag}:session", f"{tag}:history", f"{tag}:seen"]

    def _channel(self, session_id: str) -> str:
        return f"{self._prefix}{{{session_id}}}:frames"

    @property
    def _index(self) -> str:
        return f"{self._prefix}sessions"

    @property
    def _events_channel(self) -> str:
        return f"{self._prefix}events"

    @property
    def _control_channel(self) -> str:
        # Always subscribed, so the listener can tell a dead connection at once.
        return f"{self._prefix}node:{self.node_id}:control"

    @property
    def _nodes(self) -> str:
        return f"{self._prefix}nodes"

    def _node_key(self, node_id: str) -> str:
        return f"{self._prefix}node:{node_id}"

    # -- lifecycle ------------------------------------------------------------

    async def start(self, node: NodeLink) -> None:
        """Start listening and heartbeating; works even if Redis is down (it retries)."""
        self._node = node
        self._tasks = [
            asyncio.create_task(self._listen(), name="redis-listener"),
            asyncio.create_task(self._beat(), name="redis-heartbeat"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(*_UNREACHABLE, RedisError):
            await self._redis.srem(self._nodes, self.node_id)
            await self._redis.delete(self._node_key(self.node_id))
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()
        self._node = None

    def ready(self) -> bool:
        return self._heartbeat_ok and self._listening.is_set()

    @contextlib.asynccontextmanager
    async def _store(self) -> AsyncIterator[None]:
        """Redis being out of reach becomes StorageUnavailable."""
        try:
            yield
        except _UNREACHABLE as exc:
            raise StorageUnavailable(f"Redis at {self._where} is unreachable: {exc}") from None

    def _now(self) -> tuple[str, float]:
        now = self._clock()
        return now.isoformat(), now.timestamp()

    def _script(self, pipe: Pipeline, name: str, keys: list[str], args: list[Any]) -> None:
        """Queue a Lua script by its SHA (no SCRIPT EXISTS round trip first)."""
        pipe.evalsha(SHAS[name], len(keys), *keys, *args)

    async def _eval(self, name: str, keys: list[str], args: list[Any], index: str | None) -> Any:
        """Run one script; with ``index``, also move that session up the index.

        One command needs no pipeline, and the hot path is one script per step.
        """
        if index is not None:
            stamp = self._clock().timestamp()

            def build(pipe: Pipeline) -> None:
                self._script(pipe, name, keys, args)
                pipe.zadd(self._index, {index: stamp}, xx=True)

            return (await self._run(build))[0]
        try:
            return await self._redis.evalsha(SHAS[name], len(keys), *keys, *args)
        except NoScriptError:
            await self._load_scripts()
            return await self._redis.evalsha(SHAS[name], len(keys), *keys, *args)

    async def _load_scripts(self) -> None:
        for body in SCRIPTS.values():
            await self._redis.script_load(body)

    async def _run(self, build: Callable[[Pipeline], None]) -> list[Any]:
        """Run a pipeline ``build`` fills; after a Redis restart, load the scripts and retry."""
        for attempt in (1, 2):
            async with self._redis.pipeline(transaction=False) as pipe:
                build(pipe)
                try:
                    return list(await pipe.execute())
                except NoScriptError:
                    if attempt == 2:
                        raise
            await self._load_scripts()
        raise AssertionError("unreachable")

    def _index_due(self, session_id: str) -> bool:
        now = time.monotonic()
        if now - self._indexed.get(session_id, 0.0) < INDEX_EVERY:
            return False
        self._indexed[session_id] = now
        return True

    # -- sessions -------------------------------------------------------------

    async def create_session(self, record: SessionRecord) -> bool:
        fields = {
            "record": json.dumps(
                {
                    "user_id": record.user_id,
                    "client_info": record.client_info.model_dump(mode="json"),
                    "created_at": record.created_at.isoformat(),
                    "token_hash": record.token_hash,
                }
            ),
            "connected_at": record.connected_at.isoformat(),
            "last_activity": record.last_activity.isoformat(),
            "message_count": record.message_count,
            "seq": 0,
        }
        args: list[Any] = [self._ttl_ms]
        for key, value in fields.items():
            args += [key, value]
        key = self._session_keys(record.session_id)[0]

        def build(pipe: Pipeline) -> None:
            self._script(pipe, "create", [key], args)
            pipe.zadd(self._index, {record.session_id: record.last_activity.timestamp()})

        async with self._store():
            created, _ = await self._run(build)
        return bool(created)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        async with self._store():
            raw: dict[str, str] = await self._redis.hgetall(self._session_keys(session_id)[0])  # type: ignore[assignment]
        return _record(session_id, raw) if raw else None

    async def touch_session(self, session_id: str, *, connected: bool = False) -> SessionRecord:
        now, stamp = self._now()
        keys = self._session_keys(session_id)

        def build(pipe: Pipeline) -> None:
            self._script(pipe, "touch", keys, [self._ttl_ms, now, "1" if connected else "0"])
            pipe.zadd(self._index, {session_id: stamp}, xx=True)

        async with self._store():
            flat, _ = await self._run(build)
        if not flat:
            raise SessionNotFound(session_id)
        self._indexed[session_id] = time.monotonic()
        return _record(session_id, dict(zip(flat[::2], flat[1::2], strict=True)))

    async def list_sessions(self, *, offset: int, limit: int) -> tuple[list[SessionRecord], int]:
        _, stamp = self._now()
        async with self._store():
            await self._redis.zremrangebyscore(self._index, "-inf", stamp - self._ttl_ms / 1000)
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zrevrange(self._index, offset, offset + limit - 1)
                pipe.zcard(self._index)
                ids, total = await pipe.execute()
            async with self._redis.pipeline(transaction=False) as pipe:
                for sid in ids:
                    pipe.hgetall(self._session_keys(sid)[0])
                hashes = await pipe.execute()
        records = [_record(sid, raw) for sid, raw in zip(ids, hashes, strict=True) if raw]
        return records, int(total)

    async def sweep_expired(self) -> int:
        """Session keys expire by themselves; this prunes the index of them."""
        _, stamp = self._now()
        stale = time.monotonic() - 6 * INDEX_EVERY
        self._indexed = {sid: t for sid, t in self._indexed.items() if t > stale}
        async with self._store():
            removed = await self._redis.zremrangebyscore(
                self._index, "-inf", stamp - self._ttl_ms / 1000
            )
        return int(removed)

    # -- history --------------------------------------------------------------

    async def add_user_message(
        self, session_id: str, message: StoredMessage, *, exclude: str | None = None
    ) -> AddedMessage:
        now, _ = self._now()
        head, tail = envelope_parts("user_message", session_id, message.timestamp)
        args = [
            message.model_dump_json(exclude={"id"}),
            message.client_message_id or "",
            self._history_limit,
            self._ttl_ms,
            now,
            DEDUP_WINDOW,
            self._channel(session_id),
            exclude or "",
            head,
            tail,
        ]
        async with self._store():
            result = await self._eval(
                "add_user",
                self._session_keys(session_id),
                args,
                session_id if self._index_due(session_id) else None,
            )
        status = int(result[0])
        if status == -1:
            raise SessionNotFound(session_id)
        stored_id = int(result[1])
        stored = (
            StoredMessage.model_validate_json(result[2])
            if result[2]
            else message.model_copy(update={"id": stored_id})
        )
        return AddedMessage(stored, reply_id=stored_id + 1 if status == 1 else None)

    async def add_reply(self, session_id: str, message: StoredMessage, *, publish: str) -> None:
        now, _ = self._now()
        args = [
            message.model_dump_json(),
            message.id,
            self._history_limit,
            self._ttl_ms,
            now,
            self._channel(session_id),
            publish,
        ]
        async with self._store():
            stored = await self._eval(
                "add_reply",
                self._session_keys(session_id),
                args,
                session_id if self._index_due(session_id) else None,
            )
        if not stored:
            raise SessionNotFound(session_id)

    async def history(
        self, session_id: str, *, after: int | None, limit: int, touch: bool = True
    ) -> tuple[list[StoredMessage], bool]:
        keys = self._session_keys(session_id)
        now, _ = self._now()

        def build(pipe: Pipeline) -> None:
            if touch:
                self._script(pipe, "touch", keys, [self._ttl_ms, now, "0"])
            else:
                pipe.exists(keys[0])
            if after is None:
                pipe.zrange(keys[1], -limit, -1)
            else:
                pipe.zrangebyscore(keys[1], f"({after}", "+inf", start=0, num=limit + 1)

        async with self._store():
            found, members = await self._run(build)
        if not found:
            raise SessionNotFound(session_id)
        messages = [StoredMessage.model_validate_json(m) for m in members]
        has_more = after is not None and len(messages) > limit
        return messages[:limit], has_more

    # -- fan-out --------------------------------------------------------------

    async def subscribe(self, session_id: str) -> None:
        channel = self._channel(session_id)
        self._channels[channel] = session_id
        await self._pubsub_call("subscribe", channel)

    async def unsubscribe(self, session_id: str) -> None:
        channel = self._channel(session_id)
        if self._channels.pop(channel, None) is not None:
            await self._pubsub_call("unsubscribe", channel)

    async def publish(self, session_id: str, frame: Frame, *, exclude: str | None = None) -> None:
        # Other nodes may have receivers: a lazy frame is always made here.
        text = frame_text(frame)
        async with self._store():
            await self._redis.publish(self._channel(session_id), f"{exclude or ''}\n{text}")

    def events_wanted(self) -> bool:
        return self._watching_events or self._events_watched_anywhere

    async def subscribe_events(self) -> None:
        self._watching_events = True
        await self._pubsub_call("subscribe", self._events_channel)

    async def unsubscribe_events(self) -> None:
        self._watching_events = False
        await self._pubsub_call("unsubscribe", self._events_channel)

    async def publish_event(self, session_id: str, frame: str) -> None:
        async with self._store():
            await self._redis.publish(self._events_channel, f"{session_id}\n{frame}")

    async def _pubsub_call(self, method: str, channel: str) -> None:
        """(Un)subscribe now if listening; a reconnect subscribes to everything anyway."""
        async with self._pubsub_lock:
            pubsub = self._pubsub
            if pubsub is None or not self._listening.is_set():
                return
            with contextlib.suppress(*_UNREACHABLE):
                await getattr(pubsub, method)(channel)

    def _wanted_channels(self) -> list[str]:
        channels = [self._control_channel, *self._channels]
        if self._watching_events:
            channels.append(self._events_channel)
        return channels

    async def _listen(self) -> None:
        """Deliver pub/sub messages to this node; reconnect with backoff, forever.

        A listener that dies silently would leave a node deaf while it still
        looks healthy, so every failure here is logged, retried and reflected
        in ready().
        """
        backoff = 0.1
        while True:
            try:
                # Under the lock, so a subscribe() either lands in this list or
                # runs after the listener is marked live; none is lost between.
                async with self._pubsub_lock:
                    pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                    self._pubsub = pubsub
                    await pubsub.subscribe(*self._wanted_channels())
                    self._listening.set()
                if backoff > 0.1:
                    log.info("pub/sub to Redis at %s is back", self._where)
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._listening.clear()
                if backoff == 0.1:
                    log.warning(
                        "pub/sub to Redis at %s lost (%s); reconnecting",
                        self._where,
                        type(exc).__name__,
                    )
                lost, self._pubsub = self._pubsub, None
                if lost is not None:
                    with contextlib.suppress(Exception):
                        await lost.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, 2.0)

    def _dispatch(self, channel: str, data: str) -> None:
        node = self._node
        if node is None:
            return
        head, _, frame = data.partition("\n")
        if channel == self._events_channel:
            node.deliver_event(head, frame)
            return
        session_id = self._channels.get(channel)
        if session_id is not None:
            node.deliver(session_id, frame, head or None)

    # -- presence -------------------------------------------------------------

    async def _beat(self) -> None:
        """Publish this node's presence; learn whether anyone watches events."""
        failing_since: float | None = None
        while True:
            try:
                await self._beat_once()
                if failing_since is not None:
                    log.info("Redis at %s is reachable again", self._where)
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
                        self._where,
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
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._node_key(self.node_id), document, px=int(3000 * self._heartbeat))
            pipe.sadd(self._nodes, self.node_id)
            pipe.pubsub_numsub(self._events_channel)
            _, _, numsub = await pipe.execute()
        self._events_watched_anywhere = bool(numsub and int(numsub[0][1]) > 0)

    async def cluster_presence(self) -> Presence:
        node = self._node
        local = node.presence() if node is not None else Presence()
        async with self._store():
            members: set[str] = await self._redis.smembers(self._nodes)  # type: ignore[assignment]
            others = [n for n in members if n != self.node_id]
            documents = (
                await self._redis.mget([self._node_key(n) for n in others]) if others else []
            )
            gone = [n for n, doc in zip(others, documents, strict=True) if doc is None]
            if gone:
                await self._redis.srem(self._nodes, *gone)
        parts = [local]
        for doc in documents:
            if doc is not None:
                data = json.loads(doc)
                parts.append(Presence(data["connections"], data["sessions"], data["users"]))
        return Presence.merge(parts)


def _record(session_id: str, raw: dict[str, str]) -> SessionRecord:
    static = json.loads(raw["record"])
    last_id = raw.get("last_message_id")
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
    )


__all__ = ["RedisEngine"]
