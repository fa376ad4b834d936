"""This node: who is connected here and who watches, and the one way frames leave.

The bus calls :class:`LocalNode` back (it is the bus's :class:`NodeLink`) with
what was published anywhere; the chat layer sends through it to one of two
targets: one connection, or every connection of a session (on every node,
through the bus). Subscriptions follow the connections: this node listens to a
session's frames while it has a connection in it, and to admin events while
someone here watches them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from chatbuddy.chat.registry import Connection, ConnectionRegistry
from chatbuddy.chat.watchers import Watcher, Watchers
from chatbuddy.engine import Bus, Frame, Presence
from chatbuddy.errors import StorageUnavailable

log = logging.getLogger(__name__)


class LocalNode:
    """The connections and watchers of this process, and their subscriptions."""

    def __init__(self, bus: Bus) -> None:
        # Carries frames and events between nodes; calls deliver*() back.
        self._bus = bus
        # This node's chat connections.
        self._registry = ConnectionRegistry()
        # This node's admin tail sockets.
        self._watchers = Watchers()
        # Sessions this node receives published frames for.
        self._subscribed: set[str] = set()
        # Whether this node receives admin events.
        self._watching_events = False
        # Subscription changes run one at a time (see _follow).
        self._following = asyncio.Lock()
        # Fire-and-forget work from sync callbacks; held so it is not garbage-collected.
        self._background: set[asyncio.Task[None]] = set()
        # Acts on control messages (a cancel) published on any node; set by the service.
        self._on_control: Callable[[str, str], None] | None = None

    # -- membership -------------------------------------------------------------

    async def join(self, connection: Connection) -> None:
        """Register a connection and make sure its session's frames reach this node."""
        self._registry.add(connection)
        await self._follow(connection.session_id)

    def leave(self, connection: Connection) -> None:
        """Forget a connection; the session's subscription goes with its last one here."""
        self._registry.remove(connection)
        sid = connection.session_id
        if sid in self._subscribed and not self._registry.in_session(sid):
            self.spawn(self._follow(sid))

    def connections(self) -> Iterator[Connection]:
        return iter(self._registry)

    def connections_in(self, session_id: str) -> int:
        """How many of this node's connections are in the session."""
        return len(self._registry.in_session(session_id))

    def sole_tab(self, session_id: str, connection_id: str) -> bool:
        """Whether ``connection_id`` is the session's only connection on this node (not
        so for a message over HTTP, which comes from no connection here)."""
        return self._registry.sole_tab(session_id, connection_id)

    @property
    def alone(self) -> bool:
        """Whether this node is the only one (its bus reaches no other)."""
        return not self._bus.spans_nodes

    async def watch(
        self, watcher: Watcher, session_id: str | None, *, tool_arguments: bool = False
    ) -> None:
        """Stream admin events (of one session, or all) to ``watcher``; tool calls with
        their arguments only if it asks for ``tool_arguments``."""
        self._watchers.add(watcher, session_id, tool_arguments=tool_arguments)
        await self._follow(None)

    async def listen_to_events(self) -> None:
        """Receive admin events on this node from now on: a watcher is about to come.
        If it does not, call :meth:`settle_events`."""
        async with self._following:
            if not self._watching_events:
                self._watching_events = True
                await self._bus.subscribe_events()

    def settle_events(self) -> None:
        """Stop receiving admin events if nobody watches them (after :meth:`listen_to_events`
        for a watcher that never came)."""
        self.spawn(self._follow(None))

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.remove(watcher)
        if not self._watchers:
            self.spawn(self._follow(None))

    # -- outbound: the two targets ----------------------------------------------

    def to_connection(self, connection_id: str, frame: str) -> bool:
        """Send to one connection of this node; False if it is gone."""
        return self._registry.send_to(connection_id, frame)

    async def to_session(
        self, session_id: str, incarnation: str, frame: Frame, *, exclude: str | None = None
    ) -> None:
        """Send to every connection of the session's ``incarnation`` on every node, but
        ``exclude``. Raises StorageUnavailable when the bus cannot carry it."""
        await self._bus.publish(session_id, frame, exclude=exclude, incarnation=incarnation)

    async def to_session_or_here(self, session_id: str, incarnation: str, frame: str) -> None:
        """Like :meth:`to_session`, but when the bus is down still reach this node's tabs
        (for errors: whoever is here should hear that something failed)."""
        try:
            await self._bus.publish(session_id, frame, incarnation=incarnation)
        except StorageUnavailable:
            self._registry.send_to_session(session_id, frame, incarnation=incarnation)

    async def to_every_node(self, session_id: str, message: str) -> None:
        """Send a control message about the session to every node (this one too), where
        :meth:`on_control`'s handler acts on it. Raises StorageUnavailable."""
        await self._bus.publish_control(session_id, message)

    def on_control(self, handler: Callable[[str, str], None]) -> None:
        """Call ``handler(session_id, message)`` for every control message that arrives."""
        self._on_control = handler

    def sessions_here(self) -> list[tuple[str, str]]:
        """Each session (and its incarnation) with a connection on this node."""
        return sorted({(c.session_id, c.incarnation) for c in self._registry})

    def close_connection(self, connection_id: str, code: int, reason: str) -> None:
        """Close one connection of this node (if it is still here)."""
        connection = self._registry.get(connection_id)
        if connection is not None:
            connection.close(code, reason)

    def close_session(
        self,
        session_id: str,
        code: int,
        reason: str,
        *,
        only: str | None = None,
        sparing: str | None = None,
    ) -> int:
        """Close this node's connections of a session (``only`` those of that
        incarnation, or all but those of ``sparing``); how many there were."""
        closed = 0
        for connection in self._registry.in_session(session_id):
            if only is not None and connection.incarnation != only:
                continue
            if sparing is not None and connection.incarnation == sparing:
                continue
            connection.close(code, reason)
            closed += 1
        return closed

    # -- NodeLink: what the bus calls back --------------------------------------

    def deliver(
        self, session_id: str, frame: Frame, exclude: str | None, incarnation: str | None
    ) -> None:
        """Frames published to a session reach its connections on this node (only those
        admitted to the incarnation it was published for)."""
        self._registry.send_to_session(session_id, frame, exclude=exclude, incarnation=incarnation)

    def deliver_event(self, session_id: str, frame: str) -> None:
        """Admin events reach this node's watchers."""
        self._watchers.deliver(session_id, frame)

    def deliver_control(self, session_id: str, message: str) -> None:
        """Control messages go to the chat layer's handler."""
        if self._on_control is not None:
            self._on_control(session_id, message)

    def presence(self) -> Presence:
        """Who is connected to this node."""
        registry = self._registry
        return Presence(len(registry), registry.session_counts(), registry.user_counts())

    # -- background work --------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` without waiting for it (from a sync callback)."""
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settle(self, within: float = 1.0) -> None:
        """Wait (up to ``within`` s) for fire-and-forget work: events, subscription changes."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=within)

    async def _follow(self, session_id: str | None) -> None:
        """Make the bus's subscription match this node's state: a session's frames
        while it has connections here, admin events (``None``) while someone watches.

        Changes run one at a time and each looks at the state when it runs, so a
        tab that closes and reopens at once cannot leave the session unsubscribed.
        """
        async with self._following:
            if session_id is None:
                wanted = bool(self._watchers)
                if wanted != self._watching_events:
                    self._watching_events = wanted
                    await (
                        self._bus.subscribe_events() if wanted else self._bus.unsubscribe_events()
                    )
                return
            wanted = bool(self._registry.in_session(session_id))
            if wanted and session_id not in self._subscribed:
                self._subscribed.add(session_id)
                await self._bus.subscribe(session_id)
            elif not wanted and session_id in self._subscribed:
                self._subscribed.discard(session_id)
                await self._bus.unsubscribe(session_id)
