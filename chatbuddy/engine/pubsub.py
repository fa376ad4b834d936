"""Fan-out through a message broker, written once for every networked bus.

What every broker-backed bus needs is here: channel names per session, the
encoding of a frame with the connection it skips (``exclude\\nframe``) and of an
admin event with its session (``session\\nevent``), which channels this node
listens to, a listener that reconnects with backoff and resubscribes, and
dispatch of what arrives to this node. A backend implements only its
primitives (:meth:`PubSubBus._publish`, :meth:`PubSubBus._open_listener`) and
presence, as python-socketio's pub/sub manager does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Protocol

from chatbuddy.backoff import Backoff
from chatbuddy.engine.bus import Frame, NodeLink, frame_text

log = logging.getLogger(__name__)


class Listener(Protocol):
    """A broker connection that receives what is published to its channels."""

    async def subscribe(self, *channels: str) -> None: ...

    async def unsubscribe(self, *channels: str) -> None: ...

    def messages(self) -> AsyncIterator[tuple[str, str]]:
        """``(channel, data)`` as published; raises when the connection is lost."""

    async def close(self) -> None: ...


def encode_frame(frame: str, exclude: str | None, incarnation: str | None) -> str:
    """A session frame on the wire between nodes (Lua scripts build the same)."""
    return f"{incarnation or ''}\n{exclude or ''}\n{frame}"


def encode_event(session_id: str, frame: str) -> str:
    """An admin event or a control message on the wire: ``session\\ntext``."""
    return f"{session_id}\n{frame}"


#: Starts the first line of an order to close a session's connections:
#: ``!CODE\nINCARNATION\nREASON`` (INCARNATION empty: every one). A frame's first
#: line holds its incarnation, hex or empty, which never starts with it.
CLOSE_MARK = "!"


def encode_close(code: int, reason: str, only: str | None) -> str:
    return f"{CLOSE_MARK}{code:d}\n{only or ''}\n{reason}"


class PubSubBus:
    """The generic half of a broker-backed bus; subclasses add the broker."""

    name = "pubsub"
    spans_nodes = True

    def __init__(self, *, prefix: str) -> None:
        # Namespace of every channel, so deployments can share a broker.
        self._prefix = prefix
        # This node's name on the bus; random, so a restarted node is a new one.
        self.node_id = secrets.token_hex(6)
        # Where frames and events that arrive go; set by start().
        self._node: NodeLink | None = None
        # channel -> session id, for every session this node listens to.
        self._channels: dict[str, str] = {}
        # Whether this node listens to admin events.
        self._watching_events = False
        # The live listener (replaced after a reconnect) and the lock that keeps
        # (un)subscribes from slipping between "channels listed" and "listening".
        self._listener: Listener | None = None
        self._listener_lock = asyncio.Lock()
        # Set while the listener has a live subscription; cleared on an outage.
        self._listening = asyncio.Event()
        # Background tasks (the listener; subclasses add theirs); cancelled by close().
        self._tasks: list[asyncio.Task[None]] = []
        # Markers this node published to itself -> who waits for them (see flush()).
        self._markers: dict[str, asyncio.Future[None]] = {}

    # -- what a backend provides ------------------------------------------------

    async def _publish(self, channel: str, data: str) -> None:
        """Send ``data`` to every listener of ``channel``."""
        raise NotImplementedError

    async def _open_listener(self, channels: list[str]) -> Listener:
        """Connect a listener already subscribed to ``channels``."""
        raise NotImplementedError

    # -- channel names ----------------------------------------------------------

    def session_channel(self, session_id: str) -> str:
        # The braces make a Redis Cluster hash tag: a session's keys and channel
        # live on one shard.
        return f"{self._prefix}{{{session_id}}}:frames"

    @property
    def events_channel(self) -> str:
        return f"{self._prefix}events"

    @property
    def control_channel(self) -> str:
        # Every node listens: a control message (a cancel) is for whichever node
        # writes the reply it names, subscribed to the session or not.
        return f"{self._prefix}control"

    @property
    def watchers_channel(self) -> str:
        # Always subscribed: a node that starts watching events says so here, so the
        # others build events at once rather than at their next heartbeat.
        return f"{self._prefix}watchers"

    @property
    def node_channel(self) -> str:
        # Always subscribed: a listener with a channel notices a dead connection
        # at once, and messages for this node alone will travel on it.
        return f"{self._prefix}node:{self.node_id}:control"

    # -- lifecycle --------------------------------------------------------------

    async def start(self, node: NodeLink) -> None:
        """Start listening; works while the broker is down (it retries)."""
        self._node = node
        self._tasks.append(asyncio.create_task(self._listen(), name=f"{self.name}-listener"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._drop_listener()
        self._node = None

    def ready(self) -> bool:
        return self._listening.is_set()

    # -- fan-out ----------------------------------------------------------------

    async def subscribe(self, session_id: str) -> None:
        channel = self.session_channel(session_id)
        self._channels[channel] = session_id
        await self._change("subscribe", channel)

    async def unsubscribe(self, session_id: str) -> None:
        channel = self.session_channel(session_id)
        if self._channels.pop(channel, None) is not None:
            await self._change("unsubscribe", channel)

    async def publish(
        self,
        session_id: str,
        frame: Frame,
        *,
        exclude: str | None = None,
        incarnation: str | None = None,
    ) -> None:
        # Other nodes may have receivers: a lazy frame is always made here.
        data = encode_frame(frame_text(frame), exclude, incarnation)
        await self._publish(self.session_channel(session_id), data)

    async def close_session(
        self, session_id: str, code: int, reason: str, *, only: str | None = None
    ) -> None:
        # On the session's own channel: exactly the nodes with a connection in it listen.
        await self._publish(self.session_channel(session_id), encode_close(code, reason, only))

    def events_wanted(self) -> bool:
        return self._watching_events

    async def subscribe_events(self) -> None:
        self._watching_events = True
        await self._change("subscribe", self.events_channel)
        try:
            await self._publish(self.watchers_channel, self.node_id)
        except Exception as exc:  # the others learn it from their heartbeat instead
            log.debug("announcing a watcher failed: %s", type(exc).__name__)

    def _watcher_appeared(self) -> None:
        """Another node started watching events (a broker that counts watchers learns it)."""

    async def unsubscribe_events(self) -> None:
        self._watching_events = False
        await self._change("unsubscribe", self.events_channel)

    async def publish_event(self, session_id: str, frame: str) -> None:
        await self._publish(self.events_channel, encode_event(session_id, frame))

    async def publish_control(self, session_id: str, message: str) -> None:
        await self._publish(self.control_channel, encode_event(session_id, message))

    async def flush(self) -> None:
        """Publish a marker to this node and wait for it: the broker delivers to one
        listener in publishing order, so what was published before has arrived."""
        marker = secrets.token_hex(8)
        arrived = self._markers[marker] = asyncio.get_running_loop().create_future()
        try:
            await self._publish(self.node_channel, marker)
            await arrived
        finally:
            self._markers.pop(marker, None)

    # -- the listener -----------------------------------------------------------

    def _wanted_channels(self) -> list[str]:
        channels = [
            self.node_channel,
            self.control_channel,
            self.watchers_channel,
            *self._channels,
        ]
        if self._watching_events:
            channels.append(self.events_channel)
        return channels

    async def _change(self, method: str, channel: str) -> None:
        """(Un)subscribe now if listening; a reconnect subscribes to everything anyway."""
        async with self._listener_lock:
            listener = self._listener
            if listener is None or not self._listening.is_set():
                return
            try:
                await getattr(listener, method)(channel)
            except Exception as exc:  # the listener loop notices the loss and reconnects
                log.debug("%s %s failed: %s", method, channel, type(exc).__name__)

    async def _listen(self) -> None:
        """Deliver what arrives to this node; reconnect with backoff, forever.

        A listener that dies silently would leave a node deaf while it still
        looks healthy, so every failure here is logged, retried and reflected in
        ready().
        """
        backoff = Backoff(first=0.1, cap=2.0, jitter=0.0)
        while True:
            try:
                async with self._listener_lock:
                    self._listener = await self._open_listener(self._wanted_channels())
                    self._listening.set()
                if backoff.failing:
                    log.info("%s bus: listening again", self.name)
                backoff.reset()
                async for channel, data in self._listener.messages():
                    self._dispatch(channel, data)
                raise ConnectionError("the listener stopped")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._listening.clear()
                if not backoff.failing:
                    log.warning(
                        "%s bus: lost the listener (%s); reconnecting",
                        self.name,
                        type(exc).__name__,
                    )
                await self._drop_listener()
                await asyncio.sleep(backoff.delay())

    async def _drop_listener(self) -> None:
        lost, self._listener = self._listener, None
        if lost is not None:
            with contextlib.suppress(Exception):
                await lost.close()

    def _dispatch(self, channel: str, data: str) -> None:
        node = self._node
        if node is None:
            return
        if channel == self.events_channel:
            about, _, event = data.partition("\n")
            node.deliver_event(about, event)
            return
        if channel == self.control_channel:
            about, _, message = data.partition("\n")
            node.deliver_control(about, message)
            return
        if channel == self.watchers_channel:
            if data != self.node_id:  # this node knows its own watchers
                self._watcher_appeared()
            return
        if channel == self.node_channel:
            waiting = self._markers.get(data)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
            return
        session_id = self._channels.get(channel)
        if session_id is None:
            return
        incarnation, _, rest = data.partition("\n")
        if incarnation.startswith(CLOSE_MARK):
            only, _, reason = rest.partition("\n")
            node.close_session(session_id, int(incarnation[1:]), reason, only=only or None)
            return
        exclude, _, frame = rest.partition("\n")
        node.deliver(session_id, frame, exclude or None, incarnation or None)
