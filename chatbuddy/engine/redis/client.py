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
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from chatbuddy.engine.redis.endpoint import (
    INCOMPLETE,
    Arg,
    Endpoint,
    ProtocolError,
    RedisBusy,
    RedisReplyError,
    RedisUnavailable,
    pack,
    parse_url,
    reader,
    refused,
)

# -- the command client -----------------------------------------------------------


class _Waiter(Protocol):
    """What waits for one reply: a future, or one share of an execute_many."""

    def done(self) -> bool: ...

    def set_result(self, result: Any, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class _Many:
    """Collects the replies of one ``execute_many``; its future gets them all at once.

    It sits in a connection's queue once per command, so replies line up.
    """

    __slots__ = ("_count", "_replies", "future")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        # Resolved with the list of replies (errors in place) when the last one comes.
        self.future = future
        # The replies so far, in command order.
        self._replies: list[Any] = []
        # How many replies complete the list.
        self._count = count

    def done(self) -> bool:
        return self.future.done()

    def set_result(self, result: Any, /) -> None:
        self._replies.append(result)
        if len(self._replies) == self._count:
            self.future.set_result(self._replies)

    def set_exception(self, exception: BaseException, /) -> None:
        if isinstance(exception, RedisReplyError):  # one command failed; the rest may not
            self.set_result(exception)
        else:
            self.future.set_exception(exception)


class _Connection(asyncio.Protocol):
    """One connection of a RedisClient, from connecting until it is lost.

    Commands are queued packed and written together by :meth:`flush`; while
    connecting they wait and leave, after AUTH and SELECT, as soon as the
    connection is made. A lost connection, or a reply that does not come within
    ``command_timeout``, fails every waiting command and the connection is
    never used again (the client makes a new one).
    """

    def __init__(self, target: Endpoint, connect_timeout: float, command_timeout: float) -> None:
        # Where to connect, and what to send first.
        self._target = target
        # Limits on connecting and on each batch's replies.
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        # The loop this connection lives on (the caller's); futures are made on it.
        self.loop = asyncio.get_running_loop()
        # Who waits for each reply, in the order the commands were queued (and sent).
        self.waiting: deque[_Waiter] = deque()
        # Packed commands not yet written.
        self._unsent: list[bytes] = []
        # Commands queued and commands written since the start, to date batches.
        self._queued = 0
        self._sent = 0
        # Replies matched to waiters since the start.
        self._answered = 0
        # (commands sent when the batch left, when its replies are due), oldest first.
        self._deadlines: deque[tuple[int, float]] = deque()
        # Fires at the oldest batch's deadline; None while nothing is outstanding.
        self._watchdog: asyncio.TimerHandle | None = None
        # Replies to AUTH/SELECT still to come; they precede every command's reply.
        self._handshake_left = 0
        # RESP parser: bytes in, replies out.
        self._reader = reader()
        # The socket's transport, once connected.
        self._transport: asyncio.Transport | None = None
        # Why this connection is unusable (failed, lost, closed); None while usable.
        self.failure: str | None = None
        # Connecting, in the background; kept so close() can cancel it.
        self._opening: asyncio.Task[None] | None = self.loop.create_task(self._open())
        # Resolved when the socket is closed, for close() to wait on.
        self._gone: asyncio.Future[None] = self.loop.create_future()

    async def _open(self) -> None:
        try:
            await self._target.open(self, self._connect_timeout)
        except RedisUnavailable as exc:
            self.fail(str(exc), cause=exc.__cause__)
        except Exception as exc:  # anything else would leave the queued commands waiting forever
            self.fail(f"cannot connect to Redis at {self._target.where}: {exc!r}", cause=exc)
        finally:
            self._opening = None

    def queue(self, command: bytes, waiter: _Waiter, count: int = 1) -> None:
        """Queue ``count`` packed commands (one bytes); ``waiter`` gets each reply."""
        self._unsent.append(command)
        if count == 1:
            self.waiting.append(waiter)
        else:
            self.waiting.extend([waiter] * count)
        self._queued += count

    def flush(self) -> None:
        """Write every queued command at once (when connected)."""
        if self._transport is None or not self._unsent or self.failure is not None:
            return
        unsent, self._unsent = self._unsent, []
        self._transport.write(unsent[0] if len(unsent) == 1 else b"".join(unsent))
        self._batch_sent()

    def _batch_sent(self) -> None:
        self._sent = self._queued
        due = self.loop.time() + self._command_timeout
        self._deadlines.append((self._sent, due))
        if self._watchdog is None:
            self._watchdog = self.loop.call_at(due, self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._watchdog = None
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= self._answered:
            deadlines.popleft()
        if not deadlines:
            return
        due = deadlines[0][1]
        if due <= self.loop.time():
            # Later replies would be matched to the wrong commands: drop it all.
            self.fail(
                f"Redis at {self._target.where} sent no reply "
                f"within {self._command_timeout:g} s (command_timeout)"
            )
        else:
            self._watchdog = self.loop.call_at(due, self._check_deadlines)

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self.failure is not None:  # closed while connecting
            transport.abort()
            return
        handshake = [pack(command) for command in self._target.handshake(select=True)]
        self._handshake_left = len(handshake)
        unsent, self._unsent = self._unsent, []
        if handshake or unsent:
            transport.write(b"".join(handshake + unsent))
        if unsent:
            self._batch_sent()

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self.waiting
        answered = 0
        try:
            while (reply := reader.gets()) is not INCOMPLETE:
                if self._handshake_left:
                    self._handshake_left -= 1
                    if type(reply) is RedisReplyError:
                        self.fail(str(refused(self._target.where, reply)), cause=reply)
                        return
                    continue
                waiter = waiting.popleft()
                answered += 1
                if not waiter.done():  # a caller that was cancelled gets nothing
                    if type(reply) is RedisReplyError:
                        waiter.set_exception(reply)
                    else:
                        waiter.set_result(reply)
        except ProtocolError as exc:
            self.fail(f"Redis at {self._target.where} sent something that is not RESP", cause=exc)
        except IndexError:
            self.fail(f"Redis at {self._target.where} sent a reply no command asked for")
        finally:
            self._answered += answered

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc is not None else ""
        self.fail(f"lost the connection to Redis at {self._target.where}{reason}", cause=exc)
        if not self._gone.done():
            self._gone.set_result(None)

    # -- ending --

    def fail(self, reason: str, *, cause: BaseException | None = None) -> None:
        """Make the connection unusable; every waiting command raises RedisUnavailable."""
        if self.failure is None:
            self.failure = reason
        waiting, self.waiting = self.waiting, deque()
        self._unsent = []
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for waiter in waiting:
            if not waiter.done():
                error = RedisUnavailable(self.failure)
                error.__cause__ = cause
                waiter.set_exception(error)
        if self._transport is not None:
            self._transport.abort()
        if self._opening is not None and self._opening is not asyncio.current_task():
            self._opening.cancel()

    async def closed(self) -> None:
        """Wait until the socket (or the attempt to open one) is gone."""
        opening = self._opening
        if opening is not None:
            await asyncio.wait([opening])  # (it ends cancelled; that is not our cancellation)
        if self._transport is not None:
            await self._gone


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
        self._slots: list[_Connection | None] = [None] * connections
        # The slot the next turn uses (round robin, one per turn).
        self._next_slot = 0
        # The connection this loop turn's commands go to; None between turns.
        self._turn: _Connection | None = None
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
        connection.queue(packed, _Many(future, len(commands)), len(commands))
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

    def _connection(self, count: int) -> _Connection:
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

    def _start_turn(self) -> _Connection:
        if self._turn is None:  # first command of the turn: write them all when it ends
            asyncio.get_running_loop().call_soon(self._flush)
        index = self._next_slot
        self._next_slot = (index + 1) % len(self._slots)
        connection = self._slots[index]
        if connection is None or connection.failure is not None:
            connection = _Connection(self._target, self._connect_timeout, self._command_timeout)
            self._slots[index] = connection
        self._turn = connection
        return connection

    def _flush(self) -> None:
        connection, self._turn = self._turn, None
        if connection is not None:
            connection.flush()
