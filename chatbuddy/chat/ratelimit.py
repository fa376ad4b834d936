"""Token buckets: how much a connection, a session or a client address may send."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """Allows ``rate`` events per second on average and ``burst`` at once."""

    # One per connection: slots keep 10,000 of them small.
    __slots__ = ("_burst", "_clock", "_rate", "_tokens", "_updated")

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # Tokens regained per second.
        self._rate = rate
        # Most tokens held; a full bucket allows this many events back to back.
        self._burst = float(burst)
        # Tokens now; starts full so a new connection is not throttled.
        self._tokens = float(burst)
        # Injected so tests can move time instead of sleeping.
        self._clock = clock
        # When tokens were last added.
        self._updated = clock()

    @property
    def rate(self) -> float:
        return self._rate

    def is_full(self) -> bool:
        """Whether the bucket has refilled to its burst (no recent use shows)."""
        return self._tokens + (self._clock() - self._updated) * self._rate >= self._burst

    def try_acquire(self) -> bool:
        """Take a token if there is one."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class KeyedBuckets:
    """One TokenBucket per key (a session, a client address), shared by every
    connection with that key, so reconnecting or opening more tabs buys nothing.

    Buckets that have refilled completely are as good as new: :meth:`prune`
    forgets them, so the map holds only the keys that were busy lately.
    """

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # Each bucket's refill rate, per second, and size.
        self._rate = rate
        self._burst = burst
        # Injected so tests can move time instead of sleeping.
        self._clock = clock
        # key -> its bucket.
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, key: str) -> TokenBucket:
        """The bucket of ``key`` (made full on first use)."""
        found = self._buckets.get(key)
        if found is None:
            found = self._buckets[key] = TokenBucket(self._rate, self._burst, clock=self._clock)
        return found

    def __len__(self) -> int:
        return len(self._buckets)

    def prune(self) -> int:
        """Forget buckets that are full again; how many went."""
        full = [key for key, bucket in self._buckets.items() if bucket.is_full()]
        for key in full:
            del self._buckets[key]
        return len(full)
