"""The bus: fan-out of frames to every node's connections, admin events, presence.

A frame published to a session reaches every node that has a connection in it,
and through the node (:class:`NodeLink`) those connections. Frames are opaque
text here: the chat layer builds them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

#: A frame to send, or a function that makes it: lets a node skip serializing
#: a frame nobody will receive (a `user_message` when there is no other tab).
Frame = str | Callable[[], str]


def frame_text(frame: Frame) -> str:
    return frame if isinstance(frame, str) else frame()


@dataclass(frozen=True)
class Presence:
    """Who is connected: to one node, or (merged) to all live nodes."""

    connections: int = 0
    sessions: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    nodes: int = 1

    @staticmethod
    def merge(parts: Iterable[Presence]) -> Presence:
        sessions: Counter[str] = Counter()
        users: Counter[str] = Counter()
        connections = nodes = 0
        for part in parts:
            sessions.update(part.sessions)
            users.update(part.users)
            connections += part.connections
            nodes += part.nodes
        return Presence(connections, dict(sessions), dict(users), nodes)


class NodeLink(Protocol):
    """What a bus calls back on this node (``chatbuddy.chat.node.LocalNode``)."""

    def deliver(
        self, session_id: str, frame: Frame, exclude: str | None, incarnation: str | None
    ) -> None:
        """A frame published to a session: send it to this node's connections of it
        (of that ``incarnation`` of it, when given)."""

    def deliver_event(self, session_id: str, frame: str) -> None:
        """An admin event: send it to this node's watchers."""

    def deliver_control(self, session_id: str, message: str) -> None:
        """A control message about a session (a ``cancel``), published on any node:
        act on it if this node has a part in it (the reply it names is written here)."""

    def close_session(
        self, session_id: str, code: int, reason: str, *, only: str | None = None
    ) -> int:
        """Close this node's connections of the session (``only`` those admitted to
        that incarnation) with a WebSocket close code; how many there were."""

    def presence(self) -> Presence:
        """Who is connected to this node now."""


class Bus(Protocol):
    """Fan-out and presence for the nodes of one deployment."""

    #: "local", "redis", ..., for logs.
    name: str
    #: Whether other nodes publish and listen through it (False: this node is all).
    spans_nodes: bool

    async def start(self, node: NodeLink) -> None:
        """Begin delivering published frames and events to ``node``."""

    async def close(self) -> None:
        """Stop delivering; release connections and background tasks."""

    def ready(self) -> bool:
        """Whether frames published now reach every node (for /readyz)."""

    async def subscribe(self, session_id: str) -> None:
        """Start receiving this session's published frames on this node."""

    async def unsubscribe(self, session_id: str) -> None:
        """Stop receiving them."""

    async def publish(
        self,
        session_id: str,
        frame: Frame,
        *,
        exclude: str | None = None,
        incarnation: str | None = None,
    ) -> None:
        """Deliver ``frame`` to every subscribed node's connections of the session
        (admitted to its ``incarnation``, when given), except the connection
        ``exclude``; each gets it once, in publishing order. A callable frame is
        made only if some connection is to receive it."""

    async def close_session(
        self, session_id: str, code: int, reason: str, *, only: str | None = None
    ) -> None:
        """Close every connection of the session (``only`` those admitted to that
        incarnation), on every node, with ``code`` (docs/protocol.md lists the codes);
        for a session that was erased, sparing a new session that took its id."""

    async def flush(self) -> None:
        """Return once every frame published so far (by any node, to sessions this
        node listens to) has been delivered to this node. Before closing connections
        at shutdown, so a reply that was published is heard before the close (bound
        it with a timeout: a broker may be gone). Raises StorageUnavailable."""

    def events_wanted(self) -> bool:
        """Whether any node watches admin events (so they are worth building)."""

    async def subscribe_events(self) -> None:
        """Start receiving admin events on this node."""

    async def unsubscribe_events(self) -> None:
        """Stop receiving them."""

    async def publish_event(self, session_id: str, frame: str) -> None:
        """Deliver an admin event to every node that watches events."""

    async def publish_control(self, session_id: str, message: str) -> None:
        """Deliver a control message about the session (opaque text) to every node,
        this one included, whether or not it has a connection in the session: the
        node writing a reply may have none left (its tab closed)."""

    async def cluster_presence(self) -> Presence:
        """Who is connected to all live nodes (this one included, up to date)."""
