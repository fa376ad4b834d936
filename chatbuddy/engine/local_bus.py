"""The in-process bus: every frame published here is for this process's connections.

Paired with a store that serves one process (memory, and the durable stores to
come). Frames are handed to the node as they are, so a lazy frame is only made
if a connection receives it.
"""

from __future__ import annotations

from chatbuddy.engine.bus import Frame, NodeLink, Presence


class LocalBus:
    """Fan-out inside one process: publish is a direct call to the node."""

    name = "local"
    spans_nodes = False

    def __init__(self) -> None:
        # This process: where published frames and events go; set by start().
        self._node: NodeLink | None = None
        # Whether this process (the only one) watches admin events.
        self._watching_events = False

    async def start(self, node: NodeLink) -> None:
        self._node = node

    async def close(self) -> None:
        self._node = None

    def ready(self) -> bool:
        return True

    async def subscribe(self, session_id: str) -> None:
        """Nothing to do: every frame published here is for this process."""

    async def unsubscribe(self, session_id: str) -> None:
        """Nothing to do; see subscribe."""

    async def publish(
        self,
        session_id: str,
        frame: Frame,
        *,
        exclude: str | None = None,
        incarnation: str | None = None,
    ) -> None:
        if self._node is not None:
            self._node.deliver(session_id, frame, exclude, incarnation)

    async def close_session(
        self, session_id: str, code: int, reason: str, *, only: str | None = None
    ) -> None:
        if self._node is not None:
            self._node.close_session(session_id, code, reason, only=only)

    async def flush(self) -> None:
        """Nothing waits: frames are delivered as they are published."""

    def events_wanted(self) -> bool:
        return self._watching_events

    async def subscribe_events(self) -> None:
        self._watching_events = True

    async def unsubscribe_events(self) -> None:
        self._watching_events = False

    async def publish_event(self, session_id: str, frame: str) -> None:
        if self._watching_events and self._node is not None:
            self._node.deliver_event(session_id, frame)

    async def publish_control(self, session_id: str, message: str) -> None:
        if self._node is not None:
            self._node.deliver_control(session_id, message)

    async def cluster_presence(self) -> Presence:
        return Presence() if self._node is None else self._node.presence()
