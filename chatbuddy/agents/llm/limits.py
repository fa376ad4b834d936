"""What keeps the model's cost and load bounded: turns, and tokens per session and per day.

:class:`Turns` lets at most ``concurrency`` replies talk to the model at once;
up to ``max_waiting`` more wait, in order, and one more is refused at once with
``busy`` (:class:`~chatbuddy.errors.AgentBusy`): a queue that grows without
bound would only turn overload into timeouts. :class:`DailySpend` counts the
tokens this server used today (UTC). A session's tokens are counted in its
stored replies (``metadata.usage.session_total``), so they hold on every node
and across restarts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date

from chatbuddy.agents.llm.model import timed_out
from chatbuddy.errors import AgentBusy
from chatbuddy.records import StoredMessage, utcnow


class Turns:
    """A bounded number of replies at the model, and a bounded queue before it."""

    def __init__(self, concurrency: int, max_waiting: int) -> None:
        # Turns free now.
        self._free = concurrency
        # Most replies that may wait for a turn.
        self._max_waiting = max_waiting
        # The waiting replies, oldest first; a turn is handed to the first that still waits.
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiting if not f.done())

    @asynccontextmanager
    async def turn(self, deadline: float) -> AsyncIterator[None]:
        """Hold a turn for the block; wait for one until ``deadline`` (loop time).

        Raises AgentBusy when the queue is full, AgentFailed (timeout) at the deadline.
        """
        if self._free > 0 and not self.waiting:
            self._free -= 1
        else:
            if self.waiting >= self._max_waiting:
                raise AgentBusy("the assistant is very busy right now; please try again shortly")
            ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(ticket)
            try:
                async with asyncio.timeout_at(deadline):
                    await ticket
            except BaseException as exc:
                if ticket.done() and not ticket.cancelled():
                    self._release()  # handed a turn just as it gave up: pass it on
                else:
                    ticket.cancel()
                    if ticket in self._waiting:
                        self._waiting.remove(ticket)
                if isinstance(exc, TimeoutError):
                    raise timed_out() from None
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            ticket = self._waiting.popleft()
            if not ticket.done():
                ticket.set_result(None)  # the turn goes straight to the next in line
                return
        self._free += 1


class DailySpend:
    """Tokens this server used today (UTC)."""

    def __init__(self, today: Callable[[], date] = lambda: utcnow().date()) -> None:
        # Injected so tests can move to the next day.
        self._today = today
        # The day counted, and its tokens.
        self._day = today()
        self._tokens = 0

    def used(self) -> int:
        self._roll()
        return self._tokens

    def add(self, tokens: int) -> None:
        self._roll()
        self._tokens += max(0, tokens)

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self._tokens = today, 0


def session_tokens(history: Sequence[StoredMessage]) -> int:
    """Tokens the session used before, as its latest reply that counted them says."""
    for message in reversed(history):
        usage = (message.metadata or {}).get("usage") if message.role == "assistant" else None
        if isinstance(usage, dict):
            total = usage.get("session_total")
            if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
                return total
    return 0
