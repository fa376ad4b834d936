"""The engine interface: sessions, history, fan-out and presence.

An engine is the only shared state of a ChatBuddy deployment. The in-memory
engine serves one process; the Redis engine lets several processes act as one.
Handlers and chat logic talk only to this interface, and each method is shaped
so that a networked engine can do it in one round trip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from chatbuddy.records import SessionRecord, StoredMessage

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


@dataclass(frozen=True)
class AddedMessage:
    """What :meth:`Engine.add_user_message` did."""

    #: The stored user message (for a duplicate: the one stored before).
    message: StoredMessage
    #: The id reserved for the reply; None for a duplicate.
    reply_id: int | None

    @property
    def duplicate(self) -> bool:
        return self.reply_id is None


class NodeLink(Protocol):
    """What an engine calls back on this node (the chat service implements it)."""

    def deliver(self, session_id: str, frame: Frame, exclude: str | None) -> None:
        """A frame published to a session: send it to this node's connections of it."""

    def deliver_event(self, session_id: str, frame: str) -> None:
        """An admin event: send it to this node's watchers."""

    def presence(self) -> Presence:
        """Who is connected to this node now."""


class Engine(Protocol):
    """Storage, fan-out and presence for chat sessions.

    Every method that reads or writes a session counts as activity and
    extends its sliding expiry, unless it says otherwise. Methods that need an
    existing session raise :class:`chatbuddy.errors.SessionNotFound` when it
    is gone; a networked engine raises
    :class:`chatbuddy.errors.StorageUnavailable` when its store cannot be reached.
    """

    #: "memory" or "redis", for logs and stats.
    name: str

    async def start(self, node: NodeLink) -> None:
        """Begin delivering published frames and events to ``node``."""

    async def close(self) -> None:
        """Release connections and background tasks."""

    def ready(self) -> bool:
        """Whether the engine can serve requests now (for /readyz)."""

    # -- sessions -------------------------------------------------------------

    async def create_session(self, record: SessionRecord) -> bool:
        """Store a new session; False (and no change) if the id is taken."""

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The live session, or None if it does not exist or has expired."""

    async def touch_session(self, session_id: str, *, connected: bool = False) -> SessionRecord:
        """Mark activity (and a new connection when ``connected``); return the record."""

    async def list_sessions(self, *, offset: int, limit: int) -> tuple[list[SessionRecord], int]:
        """Live sessions, most recently active first, and how many there are in all.
        Listing is not activity."""

    async def sweep_expired(self) -> int:
        """Delete expired sessions' leftovers; return how many sessions went."""

    # -- history --------------------------------------------------------------

    async def add_user_message(
        self, session_id: str, message: StoredMessage, *, exclude: str | None = None
    ) -> AddedMessage:
        """Store a user's message under a new id, reserve the id of its reply, and
        publish it as ``user_message`` to the session's connections but ``exclude``
        (the sender), so other tabs see it.

        ``message.id`` is ignored: the engine assigns ids, which only grow
        within a session. If ``message.client_message_id`` was stored in this
        session before, nothing is stored or published and the earlier message
        is returned (a client resending after a reconnect gets no second answer).
        """

    async def add_reply(self, session_id: str, message: StoredMessage, *, publish: str) -> None:
        """Store a reply under its reserved id, then publish ``publish`` to the session."""

    async def history(
        self, session_id: str, *, after: int | None, limit: int, touch: bool = True
    ) -> tuple[list[StoredMessage], bool]:
        """Up to ``limit`` messages after id ``after`` (the latest ones when None),
        oldest first, and whether more follow them. ``touch=False`` reads without
        counting as activity (an admin looking is not the user coming back)."""

    # -- fan-out --------------------------------------------------------------

    async def subscribe(self, session_id: str) -> None:
        """Start receiving this session's published frames on this node."""

    async def unsubscribe(self, session_id: str) -> None:
        """Stop receiving them."""

    async def publish(self, session_id: str, frame: Frame, *, exclude: str | None = None) -> None:
        """Deliver ``frame`` to every subscribed node's connections of the session,
        except the connection ``exclude``; each gets it once, in publishing order.
        A callable frame is made only if some connection is to receive it."""

    def events_wanted(self) -> bool:
        """Whether any node watches admin events (so they are worth building)."""

    async def subscribe_events(self) -> None:
        """Start receiving admin events on this node."""

    async def unsubscribe_events(self) -> None:
        """Stop receiving them."""

    async def publish_event(self, session_id: str, frame: str) -> None:
        """Deliver an admin event to every node that watches events."""

    # -- presence ---------------------------------------------------------------

    async def cluster_presence(self) -> Presence:
        """Who is connected to all live nodes (this one included, up to date)."""
