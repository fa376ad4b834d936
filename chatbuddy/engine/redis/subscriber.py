"""Receiving what is published: one connection in pub/sub mode, read by a plain loop.

:class:`Subscriber` yields the messages its channels receive; it raises
:class:`RedisUnavailable` when the connection is lost, and the caller connects
and subscribes again. No per-message timeout polling.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from chatbuddy.engine.redis.endpoint import (
    INCOMPLETE,
    Arg,
    Endpoint,
    ProtocolError,
    RedisReplyError,
    RedisUnavailable,
    pack,
    parse_url,
    reader,
    refused,
)

# -- pub/sub ----------------------------------------------------------------------


class _SubscriberConnection(asyncio.Protocol):
    """The socket of a Subscriber: messages go to ``inbox``, other replies to who asked."""

    def __init__(self, target: Endpoint, command_timeout: float, max_buffered: int) -> None:
        # For error messages.
        self._target = target
        # A command Redis does not answer within this means the connection is dead.
        self._command_timeout = command_timeout
        # Stop reading the socket when this many messages wait to be taken.
        self._max_buffered = max_buffered
        # Received messages (channel, data), oldest first, until messages() takes them.
        self.inbox: deque[tuple[str, str]] = deque()
        # [replies still to come, future] per command sent, in order.
        self._expected: deque[tuple[list[int], asyncio.Future[None]]] = deque()
        # The channels Redis confirmed we are subscribed to.
        self.channels: set[str] = set()
        # RESP parser: bytes in, replies out.
        self._reader = reader()
        # The socket's transport, once connected.
        self._transport: asyncio.Transport | None = None
        # Whether reading is paused because the inbox is full.
        self._paused = False
        # Why the connection is unusable; None while it works.
        self.failure: str | None = None
        # The messages() loop waiting for something to happen; None when it is not waiting.
        self._wakeup: asyncio.Future[None] | None = None
        # Resolved when the socket is closed, for close() to wait on.
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def command(self, args: tuple[Arg, ...], replies: int) -> None:
        """Send a command and wait for its ``replies`` replies (one per channel)."""
        if self._transport is None or self.failure is not None:
            raise RedisUnavailable(
                self.failure or f"not connected to Redis at {self._target.where}"
            )
        future = asyncio.get_running_loop().create_future()
        self._expected.append(([replies], future))
        self._transport.write(pack(args))
        try:
            async with asyncio.timeout(self._command_timeout):
                await future
        except TimeoutError:
            self.fail(
                f"Redis at {self._target.where} sent no reply "
                f"within {self._command_timeout:g} s (command_timeout)"
            )
            raise RedisUnavailable(self.failure or "") from None

    async def readable(self) -> None:
        """Wait until a message arrives or the connection fails."""
        if self.inbox or self.failure is not None:
            return
        self._wakeup = asyncio.get_running_loop().create_future()
        try:
            await self._wakeup
        finally:
            self._wakeup = None

    def taken(self) -> None:
        """messages() took one; resume reading once half the inbox is free."""
        if self._paused and len(self.inbox) <= self._max_buffered // 2:
            self._paused = False
            if self._transport is not None and self.failure is None:
                self._transport.resume_reading()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        inbox = self.inbox
        try:
            while (reply := reader.gets()) is not INCOMPLETE:
                if type(reply) is list and reply[0] == "message":
                    inbox.append((reply[1], reply[2]))
                else:
                    self._answer(reply)
        except ProtocolError as exc:
            self.fail(f"Redis at {self._target.where} sent something that is not RESP", cause=exc)
        except IndexError:
            self.fail(f"Redis at {self._target.where} sent a reply no command asked for")
        if inbox:
            self._wake()
            if len(inbox) >= self._max_buffered and not self._paused and self.failure is None:
                self._paused = True
                assert self._transport is not None
                self._transport.pause_reading()

    def _answer(self, reply: Any) -> None:
        left, future = self._expected[0]
        if type(reply) is RedisReplyError:
            self._expected.popleft()
            if not future.done():
                future.set_exception(reply)
            return
        if type(reply) is list:
            if reply[0] == "subscribe":
                self.channels.add(reply[1])
            elif reply[0] == "unsubscribe":
                self.channels.discard(reply[1])
        left[0] -= 1
        if left[0] == 0:
            self._expected.popleft()
            if not future.done():
                future.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc is not None else ""
        self.fail(f"lost the connection to Redis at {self._target.where}{reason}", cause=exc)
        if not self.gone.done():
            self.gone.set_result(None)

    def fail(self, reason: str, *, cause: BaseException | None = None) -> None:
        """Make the connection unusable; waiting commands and messages() raise RedisUnavailable."""
        if self.failure is None:
            self.failure = reason
        expected, self._expected = self._expected, deque()
        for _, future in expected:
            if not future.done():
                error = RedisUnavailable(self.failure)
                error.__cause__ = cause
                future.set_exception(error)
        if self._transport is not None:
            self._transport.abort()
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)


class Subscriber:
    """One connection in pub/sub mode: subscribe to channels, iterate over messages.

    ``connect()`` first; after a loss (``messages()`` raises RedisUnavailable)
    ``connect()`` again and subscribe again: a new connection starts with no
    channels. ``subscribe``/``unsubscribe`` return once Redis confirmed them,
    so a message published after ``subscribe`` returns is received.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 2.0,
        command_timeout: float = 5.0,
        max_buffered: int = 10_000,
    ) -> None:
        # Where the server is and how to log in (the database does not matter to pub/sub).
        self._target = parse_url(url)
        # Limits on connecting and on Redis confirming a command.
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        # Messages held for a slow reader before we stop reading (Redis then buffers).
        self._max_buffered = max_buffered
        # The current connection; replaced by each connect().
        self._connection: _SubscriberConnection | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connect_timeout: float = 2.0,
        command_timeout: float = 5.0,
        max_buffered: int = 10_000,
    ) -> Subscriber:
        """The same as the constructor."""
        return cls(
            url,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            max_buffered=max_buffered,
        )

    @property
    def where(self) -> str:
        """``host:port/db`` for log lines; never the password."""
        return self._target.where

    @property
    def channels(self) -> frozenset[str]:
        """The channels Redis confirmed on the current connection."""
        connection = self._connection
        if connection is None or connection.failure is not None:
            return frozenset()
        return frozenset(connection.channels)

    async def connect(self) -> None:
        """Open a new connection (closing any previous one), with no channels.

        Raises RedisUnavailable if Redis cannot be reached or refuses AUTH.
        """
        await self.close()
        connection = _SubscriberConnection(self._target, self._command_timeout, self._max_buffered)
        await self._target.open(connection, self._connect_timeout)
        self._connection = connection
        for command in self._target.handshake(select=False):  # AUTH, if any
            try:
                await connection.command(command, 1)
            except RedisReplyError as exc:
                connection.fail(str(refused(self.where, exc)), cause=exc)
                raise refused(self.where, exc) from exc

    async def subscribe(self, *channels: str) -> None:
        """Subscribe to ``channels``; returns when Redis confirmed each."""
        if channels:
            await self._live().command(("SUBSCRIBE", *channels), len(channels))

    async def unsubscribe(self, *channels: str) -> None:
        """Unsubscribe from ``channels`` (all, if none are named); returns once confirmed.

        Messages received before the confirmation may still come out of
        :meth:`messages`; none published after it returns.
        """
        connection = self._live()
        names = channels or tuple(connection.channels)
        if names:
            await connection.command(("UNSUBSCRIBE", *names), len(names))

    async def ping(self) -> None:
        """Round trip to Redis over this connection; raises RedisUnavailable if it is dead."""
        await self._live().command(("PING",), 1)

    async def messages(self) -> AsyncIterator[tuple[str, str]]:
        """``(channel, data)`` of each message, in the order Redis sent them.

        Subscribe confirmations are not messages. Raises RedisUnavailable when
        the connection is lost (after yielding what had arrived) or replaced.
        """
        connection = self._live()
        inbox = connection.inbox
        while True:
            while inbox:
                message = inbox.popleft()
                connection.taken()
                yield message
            if connection.failure is not None:
                raise RedisUnavailable(connection.failure)
            await connection.readable()

    async def close(self) -> None:
        """Close the connection; messages() raises RedisUnavailable."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.fail(f"the subscriber to Redis at {self.where} was closed")
            await connection.gone

    def _live(self) -> _SubscriberConnection:
        connection = self._connection
        if connection is None:
            raise RedisUnavailable(f"the subscriber is not connected to Redis at {self.where}")
        if connection.failure is not None:
            raise RedisUnavailable(connection.failure)
        return connection
