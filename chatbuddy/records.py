"""What the engine stores: sessions and their messages.

These are pydantic models so that every engine can serialize them the same way
and the wire protocol can send a stored message as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from chatbuddy.tokens import token_matches_hash

T = TypeVar("T")
#: An optional field that is left out of JSON when it has no value.
OmitNone = Annotated[T | None, Field(exclude_if=lambda value: value is None)]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the only kind we store)."""
    return datetime.now(UTC)


class ClientInfo(BaseModel):
    """Where a session was opened from (``client_info`` in the design document's session)."""

    model_config = ConfigDict(frozen=True)

    ip_address: str | None = None
    user_agent: str | None = Field(default=None, max_length=512)
    accept_language: str | None = Field(default=None, max_length=256)


class SessionRecord(BaseModel):
    """One conversation: who, from where, when, how much."""

    session_id: str
    user_id: str | None
    client_info: ClientInfo
    created_at: datetime
    connected_at: datetime
    last_activity: datetime
    message_count: int = 0
    last_message_id: int | None = None
    # Never sent to clients; see chatbuddy.tokens.hash_token.
    token_hash: str = Field(exclude=True, repr=False)

    def token_matches(self, token: str | None) -> bool:
        """Whether ``token`` is this session's token, compared in constant time."""
        return token_matches_hash(self.token_hash, token)


class StoredMessage(BaseModel):
    """A message in a session's history, with its server-assigned id.

    Ids increase within a session, so "everything after id X" is well defined.
    """

    model_config = ConfigDict(frozen=True)

    id: int
    role: Literal["user", "assistant"]
    content: str
    timestamp: datetime
    user_id: OmitNone[str] = None
    client_message_id: OmitNone[str] = None
    in_reply_to: OmitNone[int] = None
    agent: OmitNone[str] = None
    confidence: OmitNone[float] = None
    metadata: OmitNone[dict[str, Any]] = None
