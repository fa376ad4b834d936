"""One connection of the Redis client: commands queued in a turn leave in one write.

:class:`PipelinedConnection` is an asyncio protocol from connecting until the
connection is lost; it writes the commands queued during one event-loop turn
together and hands each reply, in order, to what waits for it (a future, or a
share of an ``execute_many``: :class:`Many`). :mod:`chatbuddy.engine.redis.client`
spreads commands over a few of these.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol

from chatbuddy.engine.redis.endpoint import (
    INCOMPLETE,
    Endpoint,
    ProtocolError,
    RedisReplyError,
    RedisUnavailable,
    pack,
    reader,
    refused,
)


class Waiter(Protocol):
    """What waits for one reply: a future, or one share of an execute_many."""

    def done(self) -> bool: ...

    def set_result(self, result: Any, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class Many:
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


class PipelinedConnection(asyncio.Protocol):
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
        self.waiting: deque[Waiter] = deque()
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

    def queue(self, command: bytes, waiter: Waiter, count: int = 1) -> None:
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
