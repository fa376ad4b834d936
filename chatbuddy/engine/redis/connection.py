"""The one module that imports ``redis``: commands, scripts and pub/sub listeners.

Everything Redis can throw becomes :class:`chatbuddy.errors.StorageUnavailable`
here, so the store and the bus never see a redis-py exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError, RedisError

from chatbuddy.engine.redis.scripts import SCRIPTS, SHAS
from chatbuddy.errors import StorageUnavailable

Command = Sequence[str | int | float]


class RedisConnection:
    """Commands to one Redis; Lua scripts by name."""

    def __init__(self, url: str) -> None:
        # One quick retry covers a stale pooled connection after a Redis restart,
        # then errors surface as StorageUnavailable.
        self._redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
        )
        kwargs = self._redis.connection_pool.connection_kwargs
        # Host:port/db for logs, never the password.
        self.where = f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    async def close(self) -> None:
        await self._redis.aclose()

    async def execute(self, *command: str | int | float) -> Any:
        with self._unavailable():
            return await self._redis.execute_command(*command)  # type: ignore[no-untyped-call]

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` together (not a transaction); their replies in order."""
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return list(await pipe.execute())

    async def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the Lua script ``name`` (scripts.py) by its SHA; load it if Redis lost it."""
        with self._unavailable():
            try:
                return await self._redis.evalsha(SHAS[name], len(keys), *keys, *args)
            except NoScriptError:
                await self._redis.script_load(SCRIPTS[name])
                return await self._redis.evalsha(SHAS[name], len(keys), *keys, *args)

    async def script_with(
        self, name: str, keys: Sequence[str], args: Sequence[Any], also: Sequence[Command]
    ) -> list[Any]:
        """Run a script and ``also`` some commands in one round trip; all their replies."""
        with self._unavailable():
            for attempt in (1, 2):
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        pipe.evalsha(SHAS[name], len(keys), *keys, *args)
                        for command in also:
                            pipe.execute_command(*command)
                        return list(await pipe.execute())
                except NoScriptError:
                    if attempt == 2:
                        raise
                    await self._redis.script_load(SCRIPTS[name])
        raise AssertionError("unreachable")

    async def listener(self, channels: Sequence[str]) -> RedisListener:
        """A pub/sub connection subscribed to ``channels``."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        with self._unavailable():
            await pubsub.subscribe(*channels)
        return RedisListener(pubsub, self)

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise StorageUnavailable(
                f"Redis at {self.where} is unavailable: {type(exc).__name__}"
            ) from None


class RedisListener:
    """What a pub/sub connection receives (a :class:`chatbuddy.engine.pubsub.Listener`)."""

    def __init__(self, pubsub: PubSub, connection: RedisConnection) -> None:
        # The subscribed connection.
        self._pubsub = pubsub
        # Maps redis-py's errors for us.
        self._connection = connection

    async def subscribe(self, *channels: str) -> None:
        with self._connection._unavailable():
            await self._pubsub.subscribe(*channels)

    async def unsubscribe(self, *channels: str) -> None:
        with self._connection._unavailable():
            await self._pubsub.unsubscribe(*channels)

    async def messages(self) -> AsyncIterator[tuple[str, str]]:
        with self._connection._unavailable():
            while True:
                message = await self._pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    yield message["channel"], message["data"]

    async def close(self) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
