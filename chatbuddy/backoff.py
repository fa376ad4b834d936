"""One retry policy for everything that reconnects: exponential, capped, with jitter.

Used by the Redis bus's listener, the CLI's tail and stats, and the test
helpers; the browser page follows the same numbers (static/connection.js).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays that double from ``first`` up to ``cap``; :meth:`reset` after a success.

    ``jitter`` spreads each delay by ±that share, so clients that lost the same
    server do not all come back in the same instant.
    """

    first: float = 0.5
    cap: float = 20.0
    jitter: float = 0.2
    _next: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._next = self.first

    @property
    def failing(self) -> bool:
        """Whether a delay was handed out since the last reset (for "back again" logs)."""
        return self._next > self.first

    def delay(self) -> float:
        """The next pause, in seconds."""
        base = self._next
        self._next = min(2 * base, self.cap)
        if not self.jitter:
            return base
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - not secret

    def reset(self) -> None:
        self._next = self.first
