"""Who may open a connection to which session.

A new session gets a random token, and an existing session opens only for
whoever presents that token: knowing someone's session id is not enough to
read their conversation. New sessions are capped in total and per client
address, and stored only once their WebSocket is open.

When the server checks signed identities, a session's user is a verified
one: it comes from the signed token's subject, never from ``?user_id=``, and
a session that belongs to a user opens only with a token of that user (so a
customer who signed out on a shared computer leaves nothing readable behind).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chatbuddy.chat.ratelimit import KeyedBuckets
from chatbuddy.engine.store import SessionStore
from chatbuddy.errors import (
    IdentityRequired,
    InvalidIdentifier,
    ServerFull,
    SessionAccessDenied,
    TooManySessions,
)
from chatbuddy.records import ClientInfo, SessionRecord, utcnow
from chatbuddy.text import is_valid_id
from chatbuddy.tokens import hash_token, new_token

_ID_RULE = "use 1-128 characters from A-Z a-z 0-9 _ . : -"


@dataclass(frozen=True)
class HandshakeRequest:
    """What a client asks for when it opens ``/ws/chat/{session_id}``."""

    session_id: str
    user_id: str | None
    session_token: str | None
    client_info: ClientInfo
    #: The subject of the signed identity the handshake carried (already verified).
    verified_user: str | None = None


@dataclass(frozen=True)
class Grant:
    """An admitted connection's session, and the token that opens it.

    A grant for a new session (``resumed`` False) holds the record the session
    will have: it is only stored once the WebSocket is open (see
    :meth:`SessionGate.create`), so a handshake that never upgrades leaves nothing.
    """

    session: SessionRecord
    session_token: str
    resumed: bool
    #: The connection's verified user (a signed identity's subject), or None.
    verified_user: str | None = None

    @property
    def user_id(self) -> str | None:
        return self.session.user_id


class SessionGate:
    """Creates sessions on first connect and guards them afterwards."""

    def __init__(
        self,
        store: SessionStore,
        *,
        max_sessions: int,
        new_per_minute: float,
        signed_identities: bool = False,
    ) -> None:
        # Where sessions live; the gate only reads and creates them.
        self._store = store
        # Whether users are verified ones (signed identities are checked).
        self._signed_identities = signed_identities
        # Most sessions the store may hold (a flood of new ones is refused past it).
        self._max_sessions = max_sessions
        # New sessions one client address may open: a minute's worth at once, then
        # ``new_per_minute`` a minute (0: no limit).
        self._new = KeyedBuckets(new_per_minute / 60, max(1, round(new_per_minute)))
        self._limit_new = new_per_minute > 0

    async def admit(self, request: HandshakeRequest) -> Grant:
        """Check the session can be opened (a new one, or the caller's), or raise a
        HandshakeRejected subclass; a new session is stored later, by :meth:`create`."""
        _check_id("session id", request.session_id)
        request = self._user_of(request)
        if request.user_id is not None:
            _check_id("user id", request.user_id)
        existing = await self._store.get_session(request.session_id)
        if existing is None:
            return await self._new_session(request)
        if not existing.token_matches(request.session_token):
            raise SessionAccessDenied(
                f"session {request.session_id!r} exists; "
                "reconnect with its session_token or start a new session"
            )
        if request.user_id not in (None, existing.user_id):
            raise SessionAccessDenied(
                f"session {request.session_id!r} belongs to another user than {request.user_id!r}"
            )
        if self._signed_identities and existing.user_id not in (None, request.verified_user):
            raise SessionAccessDenied(
                f"session {request.session_id!r} belongs to a signed-in customer: reconnect "
                "with their signed token, or start a new session"
            )
        record = await self._store.touch_session(
            request.session_id, connected=True, incarnation=existing.incarnation
        )
        assert request.session_token is not None  # token_matches() said so
        return Grant(
            record, request.session_token, resumed=True, verified_user=request.verified_user
        )

    def _user_of(self, request: HandshakeRequest) -> HandshakeRequest:
        """The request with its user: a verified subject wins over (and must agree with)
        a ``user_id`` label, which signed identities do not accept alone."""
        verified = request.verified_user
        if verified is not None:
            if request.user_id not in (None, verified):
                raise SessionAccessDenied(
                    f"user_id {request.user_id!r} is not the signed token's subject {verified!r}"
                )
            return replace(request, user_id=verified)
        if request.user_id is not None and self._signed_identities:
            raise IdentityRequired(
                "this server takes the customer's user from a signed token: offer it as "
                "chatbuddy.jwt.<token> in Sec-WebSocket-Protocol, or leave user_id out"
            )
        return request

    async def _new_session(self, request: HandshakeRequest) -> Grant:
        address = request.client_info.ip_address or "unknown"
        if self._limit_new and not self._new.bucket(address).try_acquire():
            raise TooManySessions(
                "too many new sessions from your address; reconnect with a session_token"
            )
        if await self._store.count_sessions() >= self._max_sessions:
            raise ServerFull("the server holds as many sessions as it may; retry later")
        token = new_token()
        now = utcnow()
        record = SessionRecord(
            session_id=request.session_id,
            user_id=request.user_id,
            client_info=request.client_info,
            created_at=now,
            connected_at=now,
            last_activity=now,
            token_hash=hash_token(token),
        )
        return Grant(record, token, resumed=False, verified_user=request.verified_user)

    async def create(self, grant: Grant) -> bool:
        """Store a new session once its WebSocket is open; False if its id was taken
        in the meantime (or an earlier session's history is still there)."""
        return await self._store.create_session(grant.session)

    def prune(self) -> int:
        """Forget the new-session budgets nobody used lately."""
        return self._new.prune()


def check_ids(session_id: str, user_id: str | None) -> None:
    """Raise InvalidIdentifier (HTTP 400) for a malformed session or user id."""
    _check_id("session id", session_id)
    if user_id is not None:
        _check_id("user id", user_id)


def _check_id(what: str, value: str) -> None:
    if not is_valid_id(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InvalidIdentifier(f"invalid {what} {shown!r}: {_ID_RULE}")
