"""The engine interface: sessions, history and per-session fan-out.

An engine is the only shared state of a ChatBuddy deployment. The in-memory
engine serves one process; a Redis engine lets several processes act as one.
Handlers and chat logic talk only to this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from chatbuddy.records import SessionRecord, StoredMessage

#: Where an engine delivers published frames on this node:
#: ``sink(session_id, frame, exclude_connection_id)``.
FrameSink = Callable[[str, str, str | None], None]
#: Where an engine delivers admin events on this node: ``sink(session_id, frame)``.
EventSink = Callable[[str, str], None]


class Engine(Protocol):
    """Storage and fan-out for chat sessions.

    Every method that reads or writes a session counts as activity and
    extends its sliding expiry. Methods that need an existing session raise
    :class:`chatbuddy.errors.SessionNotFound` when it is gone.
    """

    async def start(self, sink: FrameSink, event_sink: EventSink) -> None:
        """Begin delivering frames published for subscribed sessions to ``sink``,
        and admin events (while subscribed to them) to ``event_sink``."""

    async def close(self) -> None:
        """Release connections and background tasks."""

    async def create_session(self, record: SessionRecord) -> bool:
        """Store a new session; False (and no change) if the id is taken."""

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The live session, or None if it does not exist or has expired."""

    async def touch_session(self, session_id: str, *, connected: bool = False) -> SessionRecord:
        """Mark activity (and a new connection when ``connected``); return the record."""

    async def next_message_id(self, session_id: str) -> int:
        """Reserve the id of the session's next message; ids only grow."""

    async def append_message(self, session_id: str, message: StoredMessage) -> SessionRecord:
        """Store a message under its reserved id; trim history to the limit."""

    async def history(
        self, session_id: str, *, after: int | None, limit: int, touch: bool = True
    ) -> tuple[list[StoredMessage], bool]:
        """Up to ``limit`` messages after id ``after`` (the latest ones when None),
        oldest first, and whether more follow them. ``touch=False`` reads without
        counting as activity (an admin looking is not the user coming back)."""

    async def list_sessions(self, *, offset: int, limit: int) -> tuple[list[SessionRecord], int]:
        """Live sessions, most recently active first, and how many there are in all.
        Listing is not activity."""

    async def sweep_expired(self) -> int:
        """Delete expired sessions; return how many went."""

    async def subscribe(self, session_id: str) -> None:
        """Start receiving this session's published frames on this node."""

    async def unsubscribe(self, session_id: str) -> None:
        """Stop receiving them."""

    async def publish(self, session_id: str, frame: str, *, exclude: str | None = None) -> None:
        """Deliver ``frame`` to every subscribed node's connections of the session,
        except the connection ``exclude``."""

    def events_wanted(self) -> bool:
        """Whether any node watches admin events (so they are worth building)."""

    async def subscribe_events(self) -> None:
        """Start receiving admin events on this node."""

    async def unsubscribe_events(self) -> None:
        """Stop receiving them."""

    async def publish_event(self, session_id: str, frame: str) -> None:
        """Deliver an admin event to every node that watches events."""
