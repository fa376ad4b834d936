"""Keeping the garbage collector's pauses short while thousands of connections are open.

Every open connection keeps about a hundred objects alive (Tornado's stream,
request and coroutines, our handler and session), and every message replaces a
dozen of them (the next read's future, reader handle, selector key). CPython's
collector scans all of them in a full collection: with 10,000 connections that
was 0.6-0.9 s, and the churn triggered one every 6-10 s (docs/performance.md).

So this process moves what survives into the collector's permanent
generation (``gc.freeze()`` four times a second, after collecting the youngest
generation: each collection then scans a moment's worth of objects, not
every connection. Only the youngest: collecting the next one too took 1-2 ms
each time with 10,000 connections (an open loop of one message per 5 s each),
and the server makes almost no cyclic garbage (~25 objects a second there).
Frozen objects are still freed by reference counting when they die; only a
reference cycle formed among them later would wait, so once an hour
(``thaw_every``) everything is thawed and collected in full.
"""

from __future__ import annotations

import gc
import logging
import time

import tornado.ioloop

log = logging.getLogger(__name__)


class CollectorPolicy:
    """Freezes survivors every ``every`` seconds; thaws and collects all every ``thaw_every``."""

    def __init__(self, *, every: float = 0.25, thaw_every: float = 3600.0) -> None:
        # Seconds between two young collections followed by a freeze.
        self._every = every
        # Seconds between two full collections of everything, frozen or not.
        self._thaw_every = thaw_every
        # When the last full collection ran (time.monotonic()).
        self._thawed_at = 0.0
        # The timer; set by start().
        self._timer: tornado.ioloop.PeriodicCallback | None = None

    def start(self) -> None:
        """Freeze what start-up built (modules, classes, schemas), then tick."""
        gc.collect()
        gc.freeze()
        self._thawed_at = time.monotonic()
        self._timer = tornado.ioloop.PeriodicCallback(self.tick, self._every * 1000)
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        gc.unfreeze()

    def tick(self) -> None:
        if time.monotonic() - self._thawed_at >= self._thaw_every:
            self.thaw()
            return
        gc.collect(0)  # cycles among the young die here, before they could be frozen
        gc.freeze()

    def thaw(self) -> int:
        """A full collection of everything; returns how many objects it freed."""
        started = time.perf_counter()
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        self._thawed_at = time.monotonic()
        log.info(
            "full garbage collection: %d objects freed in %.0f ms",
            freed,
            1000 * (time.perf_counter() - started),
        )
        return freed
