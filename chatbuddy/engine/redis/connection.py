"""The Redis engine's way to Redis: commands, scripts by name, and listeners.

Commands are auto-pipelined (:mod:`client`), pub/sub is read by a plain loop
(:mod:`subscriber`); both raise errors that are
:class:`chatbuddy.errors.StorageUnavailable`, so the store and the bus need
no mapping of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chatbuddy.engine.redis.client import RedisClient
from chatbuddy.engine.redis.endpoint import Arg, RedisReplyError
from chatbuddy.engine.redis.scripts import SCRIPTS, SHAS
from chatbuddy.engine.redis.subscriber import Subscriber
from chatbuddy.errors import ConfigurationError

Command = Sequence[Arg]


class RedisConnection:
    """Commands and listeners for one Redis URL."""

    def __init__(self, url: str) -> None:
        try:
            # Every command of the store and the bus; no pool to run dry.
            self._client = RedisClient(url)
        except ValueError as exc:  # a URL that cannot work; its message holds no password
            raise ConfigurationError(f"bad Redis URL: {exc}") from None
        # The URL, for the listeners' own connections.
        self._url = url
        #: ``host:port/db`` for log lines, never the password.
        self.where = self._client.where

    async def close(self) -> None:
        await self._client.close()

    async def execute(self, *command: Arg) -> Any:
        return await self._client.execute(*command)

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` together (not a transaction); their replies in order."""
        return await self._client.execute_many([tuple(c) for c in commands])

    async def script(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run the Lua script ``name`` (scripts.py) by its SHA; load it if Redis lost it."""
        return await self._client.evalsha(SHAS[name], keys, args, script=SCRIPTS[name])

    async def script_with(
        self, name: str, keys: Sequence[str], args: Sequence[Arg], also: Sequence[Command]
    ) -> list[Any]:
        """Run a script and ``also`` some commands in one round trip; all their replies."""
        commands = [("EVALSHA", SHAS[name], len(keys), *keys, *args), *map(tuple, also)]
        replies = await self._client.execute_many(commands, raise_on_error=False)
        first = replies[0]
        if isinstance(first, RedisReplyError) and first.code == "NOSCRIPT":
            await self._client.execute("SCRIPT", "LOAD", SCRIPTS[name])
            replies = await self._client.execute_many(commands, raise_on_error=False)
        for reply in replies:
            if isinstance(reply, RedisReplyError):
                raise reply
        return replies

    async def run_scripts(self, name: str, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` (EVALSHAs of the script ``name``, and others) together;
        load the script and send again if Redis lost it."""
        replies = await self._client.execute_many(
            [tuple(c) for c in commands], raise_on_error=False
        )
        if any(isinstance(r, RedisReplyError) and r.code == "NOSCRIPT" for r in replies):
            await self._client.execute("SCRIPT", "LOAD", SCRIPTS[name])
            replies = await self._client.execute_many(
                [tuple(c) for c in commands], raise_on_error=False
            )
        for reply in replies:
            if isinstance(reply, RedisReplyError):
                raise reply
        return replies

    async def listener(self, channels: Sequence[str]) -> Subscriber:
        """A pub/sub connection of its own, subscribed to ``channels``."""
        subscriber = Subscriber(self._url)
        await subscriber.connect()
        try:
            await subscriber.subscribe(*channels)
        except BaseException:
            await subscriber.close()
            raise
        return subscriber
