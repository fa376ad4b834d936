"""A token bucket: how many chat messages one connection may send."""

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

    def try_acquire(self) -> bool:
        """Take a token if there is one."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
