"""Who may open a connection to which session.

A new session gets a random token, and an existing session opens only for
whoever presents that token: knowing someone's session id is not enough to
read their conversation.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatbuddy.engine.store import SessionStore
from chatbuddy.errors import InvalidIdentifier, SessionAccessDenied
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


@dataclass(frozen=True)
class Grant:
    """An admitted connection's session, and the token that opens it."""

    session: SessionRecord
    session_token: str
    resumed: bool

    @property
    def user_id(self) -> str | None:
        return self.session.user_id


class SessionGate:
    """Creates sessions on first connect and guards them afterwards."""

    def __init__(self, store: SessionStore) -> None:
        # Where sessions live; the gate only reads and creates them.
        self._store = store

    async def admit(self, request: HandshakeRequest) -> Grant:
        """Create or resume the session, or raise a HandshakeRejected subclass."""
        _check_id("session id", request.session_id)
        if request.user_id is not None:
            _check_id("user id", request.user_id)
        existing = await self._store.get_session(request.session_id)
        if existing is None:
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
            if await self._store.create_session(record):
                return Grant(record, token, resumed=False)
            # Someone created it between our read and our write: theirs now.
            existing = await self._store.get_session(request.session_id)
            if existing is None:
                raise SessionAccessDenied("session was removed while connecting; retry")
        if not existing.token_matches(request.session_token):
            raise SessionAccessDenied(
                f"session {request.session_id!r} exists; "
                "reconnect with its session_token or start a new session"
            )
        if request.user_id not in (None, existing.user_id):
            raise SessionAccessDenied(
                f"session {request.session_id!r} belongs to another user than {request.user_id!r}"
            )
        record = await self._store.touch_session(request.session_id, connected=True)
        assert request.session_token is not None  # token_matches() said so
        return Grant(record, request.session_token, resumed=True)


def _check_id(what: str, value: str) -> None:
    if not is_valid_id(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InvalidIdentifier(f"invalid {what} {shown!r}: {_ID_RULE}")
