"""Commands to Redis, auto-pipelined over a few connections.

Every command issued during one event-loop turn leaves in one write, and the
replies come back in the order the commands went out, so each is handed to
the future that waits for it. There is no pool to run dry: any number of
callers can wait at once, up to ``max_pending`` (then :class:`RedisBusy`).
Replies are RESP2, decoded: bulk strings are ``str`` (UTF-8; invalid bytes
become U+FFFD), integers ``int``, arrays (and Lua tables) ``list``, nil
``None``; an error reply raises :class:`RedisReplyError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from chatbuddy.engine.redis.endpoint import (
    Arg,
    RedisBusy,
    RedisReplyError,
    RedisUnavailable,
    pack,
    parse_url,
)
from chatbuddy.engine.redis.pipelined import Many, PipelinedConnection


class RedisClient:
    """Redis commands over a few auto-pipelined connections.

    Every command issued in one event-loop turn goes to the same connection
    and leaves in one write, when the turn ends; the next turn uses the next
    connection. Connections are made on first use and made again after a
    loss. Commands are ordered as sent on one connection: a caller that needs
    B to run after A awaits A first (or sends both with :meth:`execute_many`).

    Blocking commands (BLPOP...) and MULTI/EXEC do not belong here: they would
    hold up or interleave with other callers' commands on the connection.
    """

    def __init__(
        self,
        url: str,
        *,
        connections: int = 2,
        connect_timeout: float = 2.0,
        command_timeout: float = 5.0,
        max_pending: int = 10_000,
    ) -> None:
        if connections < 1:
            raise ValueError(f"a Redis client needs at least one connection, got {connections}")
        # Where the server is, how to log in, which database.
        self._target = parse_url(url)
        # Connecting longer than this is Redis being unreachable.
        self._connect_timeout = connect_timeout
        # A reply later than this is Redis being unreachable (and the connection is dropped).
        self._command_timeout = command_timeout
        # More commands than this waiting at once means *we* are overloaded: RedisBusy.
        self._max_pending = max_pending
        # One slot per connection; None until first used.
        self._slots: list[PipelinedConnection | None] = [None] * connections
        # The slot the next turn uses (round robin, one per turn).
        self._next_slot = 0
        # The connection this loop turn's commands go to; None between turns.
        self._turn: PipelinedConnection | None = None
        # Commands waiting on the other connections, counted once per turn rather
        # than per command: they get no new ones this turn, so it can only shrink.
        self._elsewhere = 0
        # Set by close(); commands after it fail.
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connections: int = 2,
        connect_timeout: float = 2.0,
        command_timeout: float = 5.0,
        max_pending: int = 10_000,
    ) -> RedisClient:
        """The same as the constructor; the name redis-py users look for."""
        return cls(
            url,
            connections=connections,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            max_pending=max_pending,
        )

    @property
    def where(self) -> str:
        """``host:port/db`` for log lines; never the password."""
        return self._target.where

    @property
    def pending(self) -> int:
        """Commands queued or sent and not answered yet, on all connections."""
        return sum(len(slot.waiting) for slot in self._slots if slot is not None)

    async def execute(self, *args: Arg) -> Any:
        """Send one command, return its decoded reply.

        Raises RedisReplyError (Redis said no), RedisUnavailable (no
        connection, connection lost, no reply within ``command_timeout``), or
        RedisBusy (``max_pending`` commands already waiting; nothing sent).
        """
        command = pack(args)
        connection = self._connection(1)
        future: asyncio.Future[Any] = connection.loop.create_future()
        connection.queue(command, future)
        return await future

    async def execute_many(
        self, commands: Sequence[Sequence[Arg]], *, raise_on_error: bool = True
    ) -> list[Any]:
        """Send ``commands`` back to back in one write; their replies, in order.

        Not a transaction: other callers' commands may run between them. If
        any command failed, the first RedisReplyError is raised once all
        replies are in, or, with ``raise_on_error=False``, errors are returned
        in place. Connection problems raise as :meth:`execute` does.
        """
        if not commands:
            return []
        packed = b"".join(pack(tuple(command)) for command in commands)
        connection = self._connection(len(commands))
        future: asyncio.Future[list[Any]] = connection.loop.create_future()
        connection.queue(packed, Many(future, len(commands)), len(commands))
        replies = await future
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, RedisReplyError):
                    raise reply
        return replies

    async def evalsha(
        self, sha: str, keys: Sequence[Arg], args: Sequence[Arg], *, script: str
    ) -> Any:
        """Run a Lua script by its SHA1; if Redis lacks it (NOSCRIPT), load it and retry once.

        ``script`` must be the text whose SHA1 is ``sha`` (ValueError otherwise).
        An error raised by the script arrives as RedisReplyError.
        """
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except RedisReplyError as exc:
            if exc.code != "NOSCRIPT":
                raise
        loaded = await self.execute("SCRIPT", "LOAD", script)
        if loaded != sha:
            raise ValueError(f"the script's SHA1 is {loaded}, not {sha}")
        return await self.execute("EVALSHA", sha, len(keys), *keys, *args)

    async def close(self) -> None:
        """Close the connections; commands still waiting raise RedisUnavailable."""
        self._closed = True
        self._turn = None
        connections = [slot for slot in self._slots if slot is not None]
        self._slots = [None] * len(self._slots)
        for connection in connections:
            connection.fail(f"the client of Redis at {self.where} was closed")
        for connection in connections:
            await connection.closed()

    def _connection(self, count: int) -> PipelinedConnection:
        """The connection for ``count`` more commands this turn; raises RedisBusy past the limit."""
        connection = self._turn
        if connection is None or connection.failure is not None:
            if self._closed:
                raise RedisUnavailable(f"the client of Redis at {self.where} is closed")
            if self.pending + count > self._max_pending:
                raise self._busy()
            connection = self._start_turn()
            self._elsewhere = self.pending - len(connection.waiting)
        elif len(connection.waiting) + self._elsewhere + count > self._max_pending:
            raise self._busy()
        return connection

    def _busy(self) -> RedisBusy:
        return RedisBusy(
            f"{self.pending} commands already wait for Redis at {self.where} "
            f"(max_pending={self._max_pending})"
        )

    def _start_turn(self) -> PipelinedConnection:
        if self._turn is None:  # first command of the turn: write them all when it ends
            asyncio.get_running_loop().call_soon(self._flush)
        index = self._next_slot
        self._next_slot = (index + 1) % len(self._slots)
        connection = self._slots[index]
        if connection is None or connection.failure is not None:
            connection = PipelinedConnection(
                self._target, self._connect_timeout, self._command_timeout
            )
            self._slots[index] = connection
        self._turn = connection
        return connection

    def _flush(self) -> None:
        connection, self._turn = self._turn, None
        if connection is not None:
            connection.flush()
