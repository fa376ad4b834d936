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

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from chatbuddy.records import Hold, Note, SessionRecord, StoredMessage

#: Client message ids remembered per session, for deduplication.
DEDUP_WINDOW = 1000
#: Seconds a reply being produced holds its lease: a resend of its message meanwhile
#: is told the reply follows; after it (the producing node died), the resend is answered.
LEASE_SECONDS = 120.0
#: Internal notes kept per session (the oldest go first).
NOTES_LIMIT = 200

#: Who read a conversation up to a message.
Reader = Literal["customer", "operator"]
#: A customer's reaction to a reply.
Reaction = Literal["up", "down"]
#: The agent under which operators' replies are counted in reaction totals.
OPERATOR_AGENT = "operator"


@dataclass(frozen=True, slots=True)
class FrameAround:
    """The text that goes before and after a stored message's JSON to make the frame
    that tells other tabs about it (made by the chat layer, opaque here).

    ``parts`` makes ``(head, tail)`` when asked: with one tab open, nobody asks.
    """

    parts: Callable[[], tuple[str, str]]
    #: The connection that sent the message, which has its own copy.
    exclude: str | None
    #: Whether the sender is the session's only tab on its node (which then listens to
    #: the session): a store that publishes (Redis) publishes only when another node
    #: listens to it too.
    sole_tab: bool = False

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

    #: The operator's hold on the session when the message was stored (read in the
    #: same atomic step), if any: the chat layer decides what it means for the reply.
    hold: Hold | None = None
    #: Set when the caller let the store ``defer`` making the message durable: awaiting
    #: it waits until it is (StorageUnavailable if that failed). None: it already is.
    stored: Callable[[], Awaitable[None]] | None = None

    @property
    def duplicate(self) -> bool:
        return self.reply_id is None


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    """What :meth:`SessionStore.take_hold` did: ``taken`` (the caller holds it now,
    anew or extended) or not, and the hold in force (the other operator's, if not)."""

    taken: bool
    hold: Hold
    #: Whether the caller held it already (so the customer was told before).
    renewed: bool = False


@dataclass(frozen=True, slots=True)
class Reacted:
    """What :meth:`SessionStore.react` changed: the reply's reaction before and now,
    and under which agent and route the reply is counted."""

    message_id: int
    before: str | None
    now: str | None
    agent: str
    route: str | None


@dataclass(frozen=True, slots=True)
class ReactionTally:
    """How the customers of every session reacted to the replies of one agent and route."""

    agent: str
    route: str | None
    up: int
    down: int


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
        defer: bool = False,
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

        ``defer``: the caller tells nobody of the message before its reply is
        stored, or before it awaits :attr:`AddedMessage.stored`. A store whose
        writes are batched (SQLite) may then return before the message is durable
        and commit it with the reply; :meth:`add_reply` returns only once both are,
        and fails if the message could not be stored.
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

    # -- hand-off to a person: holds, notes, reactions, read receipts ---------------
    #
    # A hold is an atomic lock with an expiry, visible to every node. Holds, the
    # waiting mark, notes, reactions and read marks belong to one life of a session
    # (they go with it, and never pass to a later session with the same id).

    async def take_hold(
        self, session_id: str, operator: str, *, until: datetime, incarnation: str | None = None
    ) -> HoldOutcome:
        """Hold the session for ``operator`` until ``until``, atomically: taken if nobody
        holds it, or the hold has run out, or ``operator`` holds it already (then it is
        extended, keeping its ``since``). Taking it ends the session's waiting mark."""

    async def release_hold(
        self, session_id: str, operator: str | None = None, *, expired_only: bool = False
    ) -> Hold | None:
        """End the hold if ``operator`` holds it (None: whoever does) and, with
        ``expired_only``, only if it has run out; the hold that ended, else None.
        Each hold is ended (and returned) once, however many nodes try."""

    async def end_expired_holds(self) -> list[tuple[str, Hold]]:
        """End every hold that has run out; each session and its hold once, to exactly
        one caller across nodes (the one that tells the customer). Not activity."""

    async def request_handoff(self, session_id: str, *, incarnation: str | None = None) -> bool:
        """Mark that the customer asked for a person; False if an operator holds the
        session now or the customer already waits (the first request's time is kept)."""

    async def waiting(self, *, limit: int) -> list[SessionRecord]:
        """Live sessions whose customer waits for a person that nobody holds, the one
        waiting longest first. Not activity."""

    async def add_message(
        self,
        session_id: str,
        message: StoredMessage,
        *,
        announce: FrameAround | None = None,
        incarnation: str | None = None,
    ) -> tuple[StoredMessage, bool]:
        """Store a message that needs no reply (an operator's) under a new id; it, and
        whether the store published ``announce`` (see :meth:`add_user_message`)."""

    async def add_note(self, session_id: str, note: Note) -> None:
        """Keep an internal note with the session (the last :data:`NOTES_LIMIT`)."""

    async def notes(self, session_id: str) -> list[Note]:
        """The session's notes, oldest first. Not activity."""

    async def react(
        self,
        session_id: str,
        message_id: int,
        reaction: Reaction | None,
        *,
        agent: str,
        incarnation: str | None = None,
    ) -> Reacted | None:
        """Set (or with None, clear) the customer's reaction to reply ``message_id`` and
        update the totals: an assistant's reply counts under ``agent`` and its route,
        an operator's under :data:`OPERATOR_AGENT`. None if there is no such reply."""

    async def reaction_totals(self) -> list[ReactionTally]:
        """Reactions to replies by agent and route, over every session there was."""

    async def mark_read(
        self, session_id: str, reader: Reader, message_id: int, *, incarnation: str | None = None
    ) -> int:
        """``reader`` has seen the conversation up to ``message_id``; the mark now (it
        never goes back)."""
