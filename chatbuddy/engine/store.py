"""The session store: sessions, their history, and client-message deduplication.

A store keeps what a deployment must not forget; it does not know the wire
format. Each method is shaped so that a networked store can do it in one round
trip. Every method that reads or writes a session counts as activity and
extends its sliding expiry, unless it says otherwise. Methods that need an
existing session raise :class:`chatbuddy.errors.SessionNotFound` when it is
gone, and :class:`chatbuddy.errors.SessionReplaced` when an ``incarnation`` is
given and the id now belongs to another life of the session (so a connection
admitted to the old one never reads or writes the new one); a store that
cannot reach its backend raises :class:`chatbuddy.errors.StorageUnavailable`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chatbuddy.records import SessionRecord, StoredMessage

#: Client message ids remembered per session, for deduplication.
DEDUP_WINDOW = 1000
#: Seconds a reply being produced holds its lease: a resend of its message meanwhile
#: is told the reply follows; after it (the producing node died), the resend is answered.
LEASE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class FrameAround:
    """The text that goes before and after a stored message's JSON to make the frame
    that tells other tabs about it (made by the chat layer, opaque here).

    ``parts`` makes ``(head, tail)`` when asked: with one tab open, nobody asks.
    """

    parts: Callable[[], tuple[str, str]]
    #: The connection that sent the message, which has its own copy.
    exclude: str | None

    def wrap(self, message: StoredMessage) -> str:
        head, tail = self.parts()
        return head + message.model_dump_json() + tail


@dataclass(frozen=True, slots=True)
class AddedMessage:
    """What :meth:`SessionStore.add_user_message` did.

    A new message: ``reply_id`` is reserved and leased to the caller. A resend of
    a stored message (``resent``): its stored ``reply`` if there is one; else, if
    another producer's lease is alive, nothing to do (``reply_id`` None: the reply
    follows); else the lease is now the caller's and ``reply_id`` says what to
    answer under (the producer died: answer again).
    """

    #: The stored user message (for a resend: the one stored before).
    message: StoredMessage
    #: The id to answer under, leased to the caller; None: nothing to answer.
    reply_id: int | None
    #: Whether the store already published the announcement (it shares its backend
    #: with the bus); if not, the caller publishes it (never for a resend).
    published: bool = False
    #: The session's messages before this one, oldest first (as many as asked for).
    recent: Sequence[StoredMessage] = ()
    #: Whether the message had been stored before (a client resending it).
    resent: bool = False
    #: For a resend already answered: the stored reply.
    reply: StoredMessage | None = None

    @property
    def duplicate(self) -> bool:
        return self.reply_id is None


class SessionStore(Protocol):
    """Where sessions and their history live."""

    #: "memory", "redis", ..., for logs and stats.
    name: str

    async def start(self) -> None:
        """Open connections or files; a networked store may start while its backend is down."""

    async def close(self) -> None:
        """Release them."""

    def ready(self) -> bool:
        """Whether the store can serve requests now (for /readyz)."""

    async def create_session(self, record: SessionRecord) -> bool:
        """Store a new session; False (and no change) if the id is taken."""

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None if the store no longer keeps it (it expired, or, in a
        store that keeps transcripts past the TTL, retention removed it). A session
        returned here can be resumed with its token. Not activity."""

    async def touch_session(
        self, session_id: str, *, connected: bool = False, incarnation: str | None = None
    ) -> SessionRecord:
        """Mark activity (and a new connection when ``connected``); return the record."""

    async def keep_alive(self, sessions: Sequence[tuple[str, str]]) -> list[tuple[str, bool]]:
        """Mark ``(session_id, incarnation)`` pairs active (their tabs are open); return
        those that are gone, each with whether it was replaced (else it expired)."""

    async def count_sessions(self) -> int:
        """How many live sessions there are (about: expired ones may still count)."""

    async def list_sessions(self, *, offset: int, limit: int) -> tuple[list[SessionRecord], int]:
        """Live sessions, most recently active first, and how many there are in all.
        Listing is not activity."""

    async def export_page(
        self, *, after: str | None, limit: int, since: datetime | None = None
    ) -> tuple[list[SessionRecord], str | None]:
        """Up to ``limit`` kept sessions (live or not) active at or after ``since``,
        continuing from the cursor ``after`` (None: from the start), and the cursor of
        the next page (None: that was the last). Each page is read on its own, so an
        export of any size holds one page at a time. Memory and SQLite go in session
        id order and list each session once; Redis scans its index, which may list a
        session twice if the index is resized meanwhile. Not activity."""

    async def sweep_expired(self) -> int:
        """Delete expired sessions' leftovers; return how many sessions went."""

    async def erase(
        self, *, session_id: str | None = None, user_id: str | None = None
    ) -> list[tuple[str, str]]:
        """Erase one session, or every session of ``user_id`` (exactly one is given),
        with its history, dedup state and leases, from everywhere this store keeps
        them (for SQLite: the file, its free pages and its WAL); the ``(session_id,
        incarnation)`` pairs erased, none if none matched. For data-protection
        requests; the caller closes the tabs of exactly those incarnations."""

    async def add_user_message(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: FrameAround | None = None,
        recent: int = 0,
        incarnation: str | None = None,
    ) -> AddedMessage:
        """Store a user's message under a new id and reserve the id of its reply;
        return it with up to ``recent`` messages stored before it, read in the same
        step (the agent's view of the conversation, without another round trip).

        ``message.id`` is ignored: the store assigns ids, which only grow within a
        session. If ``message.client_message_id`` was stored in this session
        before, nothing is stored and the earlier message is returned with what
        to do about its reply (see :class:`AddedMessage`). A store that shares its
        backend with the bus publishes ``announce`` in the same atomic step and
        says so in :attr:`AddedMessage.published`. The reply's id is leased to
        the caller for :data:`LEASE_SECONDS`, until :meth:`add_reply` or
        :meth:`release`.
        """

    async def add_reply(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: str | None = None,
        incarnation: str | None = None,
    ) -> bool:
        """Store a reply under its reserved id and end its lease; True if it also
        published ``announce`` (see :meth:`add_user_message`)."""

    async def release(self, session_id: str, reply_id: int) -> None:
        """End the lease on ``reply_id`` without a reply (producing it failed), so a
        resend of its message is answered again. Nothing if the session is gone."""

    async def history(
        self,
        session_id: str,
        *,
        after: int | None,
        limit: int,
        touch: bool = True,
        incarnation: str | None = None,
    ) -> tuple[list[StoredMessage], bool]:
        """Up to ``limit`` messages after id ``after`` (the latest ones when None),
        oldest first, and whether more follow them. ``touch=False`` reads without
        counting as activity (an admin looking is not the user coming back)."""
