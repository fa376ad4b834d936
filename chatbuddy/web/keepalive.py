"""Finding chat peers that vanished without closing (a closed laptop, lost Wi-Fi).

One timer pings every connection, instead of Tornado's one timer per
connection: with 10,000 idle connections that is 10,000 fewer timers and
about 1.7 KB less memory per connection (docs/performance.md). The timer
works in slices: each tick handles one of many buckets of connections, so a
round over 10,000 connections is spread over the ping interval instead of
holding the event loop for a third of a second at once.

Slices are a twentieth of a second: with 10,000 connections a slice pings 17
of them (~0.6 ms); with slices of a quarter second, 83 held the loop ~3 ms
four times a second, most of what was left of an open loop's p99.

A connection is not pinged when, since its last visit, the client sent a
message and the server sent it a frame: the peer is alive, and a proxy in front
saw both directions carry bytes (nginx closes an upstream that sends nothing for
its read timeout, 60 s by default). Every other one is: an idle tab, a customer
who only types (frames that get no answer), a tab that only receives. In an
open loop of 10,000 chatting tabs that is 333 pings and pongs a second fewer,
each a frame for the loop to write or read between the messages.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

import tornado.ioloop

from chatbuddy.wire.close_codes import Close

#: Seconds between two ticks; each tick pings one bucket of connections.
TICK = 0.05


class Pingable(Protocol):
    """A connection that can be pinged and knows when it last heard its peer."""

    @property
    def last_heard(self) -> float:
        """``time.monotonic()`` of the last message or pong from the peer."""

    def stalled(self) -> bool:
        """Whether bytes waited for the peer all round and it took none of them."""

    def chatting(self) -> bool:
        """Whether messages went both ways since the last look (then forgotten)."""

    def ping(self, data: bytes = b"") -> None: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class KeepAlive:
    """Every ``interval`` seconds, each connection is pinged, or closed if its peer
    has been silent for ``timeout``."""

    def __init__(self, *, interval: float, timeout: float) -> None:
        # A peer silent this long (no message, no pong) is gone.
        self._timeout = timeout
        # The open connections, in buckets by identity; each tick takes the next
        # bucket, so every connection is visited once per interval.
        self._buckets: list[set[Pingable]] = [set() for _ in range(max(1, round(interval / TICK)))]
        # The bucket the next tick handles.
        self._next = 0
        # Seconds between ticks: the interval spread over the buckets.
        self._tick = interval / len(self._buckets)
        # The one timer; set by start().
        self._timer: tornado.ioloop.PeriodicCallback | None = None

    def _bucket(self, connection: Pingable) -> set[Pingable]:
        # Identity hashes are addresses, which step by the object's size: mix them
        # (Fibonacci hashing) so that connections spread over every bucket: the
        # high bits of the product, scaled to the bucket count.
        mixed = (hash(connection) * 0x9E3779B1) & 0xFFFFFFFF
        return self._buckets[(mixed * len(self._buckets)) >> 32]

    def add(self, connection: Pingable) -> None:
        self._bucket(connection).add(connection)

    def discard(self, connection: Pingable) -> None:
        self._bucket(connection).discard(connection)

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets)

    def __iter__(self) -> Iterator[Pingable]:
        return iter([c for bucket in self._buckets for c in bucket])

    def start(self) -> None:
        self._timer = tornado.ioloop.PeriodicCallback(self._slice, self._tick * 1000)
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def _slice(self) -> None:
        self._visit(self._buckets[self._next], time.monotonic() - self._timeout)
        self._next = (self._next + 1) % len(self._buckets)

    def tick(self) -> int:
        """A whole round at once (every bucket); how many silent connections were closed."""
        deadline = time.monotonic() - self._timeout
        return sum(self._visit(bucket, deadline) for bucket in self._buckets)

    @staticmethod
    def _visit(bucket: set[Pingable], deadline: float) -> int:
        """Close the bucket's connections silent since before ``deadline`` (or that read
        nothing since the last round), ping the rest but those chatting."""
        silent = [c for c in bucket if c.last_heard < deadline or c.stalled()]
        for connection in silent:
            bucket.discard(connection)
            connection.close(Close.NOT_RESPONDING, "no answer to pings")
        for connection in bucket:
            if not connection.chatting():
                connection.ping()
        return len(silent)
