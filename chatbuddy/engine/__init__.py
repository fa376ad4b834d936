"""Engines: where a deployment keeps its shared state.

An engine pairs a :class:`SessionStore` (sessions, history) with a :class:`Bus`
(fan-out between nodes, admin events, presence). :data:`ENGINES` names the
pairs a server can run on; adding a backend is one module and one line there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chatbuddy.engine.bus import Bus, Frame, NodeLink, Presence, frame_text
from chatbuddy.engine.local_bus import LocalBus
from chatbuddy.engine.memory import MemoryStore
from chatbuddy.engine.store import AddedMessage, FrameAround, SessionStore
from chatbuddy.errors import ConfigurationError
from chatbuddy.settings import Settings


@dataclass(frozen=True)
class Engine:
    """A store and the bus it pairs with, started and closed together."""

    #: The table's name for the pair ("memory", "sqlite", "redis"), for logs and stats.
    name: str
    store: SessionStore
    bus: Bus

    async def start(self, node: NodeLink) -> None:
        await self.store.start()
        await self.bus.start(node)

    async def close(self) -> None:
        """The bus first: it may still tell the store's backend it is leaving."""
        await self.bus.close()
        await self.store.close()

    def ready(self) -> bool:
        return self.store.ready() and self.bus.ready()


def _memory(settings: Settings) -> Engine:
    store = MemoryStore(session_ttl=settings.session_ttl, history_limit=settings.history_limit)
    return Engine("memory", store, LocalBus())


def _sqlite(settings: Settings) -> Engine:
    from chatbuddy.engine.sqlite import SQLiteStore

    store = SQLiteStore(
        settings.store_file,
        session_ttl=settings.session_ttl,
        history_limit=settings.history_limit,
        retention=settings.retention,
        synchronous=settings.store_sync,
    )
    return Engine("sqlite", store, LocalBus())


def _redis(settings: Settings) -> Engine:
    from chatbuddy.engine.redis import redis_pair  # only Redis deployments import redis

    if not settings.redis_url:
        raise ConfigurationError("the redis engine needs a Redis URL (--redis-url)")
    store, bus = redis_pair(
        settings.redis_url,
        prefix=settings.redis_prefix,
        session_ttl=settings.session_ttl,
        history_limit=settings.history_limit,
    )
    return Engine("redis", store, bus)


#: Engine name -> how to build it from the settings.
ENGINES: dict[str, Callable[[Settings], Engine]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "redis": _redis,
}


def make_engine(settings: Settings) -> Engine:
    """The engine the settings name (:attr:`Settings.engine`)."""
    try:
        factory = ENGINES[settings.engine]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise ConfigurationError(
            f"unknown engine {settings.engine!r}; choose one of {known}"
        ) from None
    return factory(settings)


__all__ = [
    "ENGINES",
    "AddedMessage",
    "Bus",
    "Engine",
    "Frame",
    "FrameAround",
    "LocalBus",
    "MemoryStore",
    "NodeLink",
    "Presence",
    "SessionStore",
    "frame_text",
    "make_engine",
]
