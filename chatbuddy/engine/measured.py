"""An engine whose every call is timed: the round trips to its backend, for metrics.

:func:`measured` wraps an engine's store and bus so that each coroutine method
reports how long it took, and whether the backend could not be reached
(:class:`StorageUnavailable`), to an :class:`EngineMetrics`. It wraps by name,
whatever methods the store and bus have, so an engine (or a method) added later
is measured without a change here. Only the parts whose calls leave the
process (Redis, a database file) are worth it: the memory store's and the local
bus's take a microsecond, which the timing would double, so they are left as
they are (an engine of a file store and the local bus has its store measured).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, cast

from chatbuddy.engine import Bus, Engine, LocalBus, MemoryStore, SessionStore
from chatbuddy.errors import StorageUnavailable
from chatbuddy.metrics import EngineMetrics

#: Lifecycle, not traffic: not measured.
_UNMEASURED = frozenset({"start", "close"})


#: Parts that live in this process: nothing to time.
_IN_PROCESS = (MemoryStore, LocalBus)


def measured(engine: Engine, metrics: EngineMetrics) -> Engine:
    """``engine`` with its store's and bus's calls reported to ``metrics`` (those
    of the parts that leave the process; ``engine`` itself if none does)."""
    store, bus = engine.store, engine.bus
    if not isinstance(store, _IN_PROCESS):
        store = cast(SessionStore, _Timed(store, metrics))
    if not isinstance(bus, _IN_PROCESS):
        bus = cast(Bus, _Timed(bus, metrics))
    if store is engine.store and bus is engine.bus:
        return engine
    return replace(engine, store=store, bus=bus)


class _Timed:
    """Stands in for ``target``: its coroutine methods timed, everything else as it is."""

    def __init__(self, target: object, metrics: EngineMetrics) -> None:
        # The store or bus that does the work.
        self._target = target
        # Told of every call.
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in _UNMEASURED or not inspect.iscoroutinefunction(value):
            return value  # looked up on the target every time (properties stay live)
        timed = _timed(name, value, self._metrics)
        setattr(self, name, timed)  # found directly from now on, without __getattr__
        return timed


def _timed(
    name: str, method: Callable[..., Awaitable[Any]], metrics: EngineMetrics
) -> Callable[..., Awaitable[Any]]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await method(*args, **kwargs)
        except StorageUnavailable:
            metrics.engine_call(name, time.perf_counter() - started, failed=True)
            raise
        metrics.engine_call(name, time.perf_counter() - started, failed=False)
        return result

    return call
