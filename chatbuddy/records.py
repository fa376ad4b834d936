"""What the engine stores: sessions and their messages.

A stored message is a pydantic model, so every engine serializes it the same
way and the wire protocol sends it as it is. A session is a slotted
dataclass: one lives as long as its tab, and a model cost 1.2 KB more per
connection and a validating ``__setattr__`` on every message
(docs/performance.md).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from chatbuddy.tokens import token_matches_hash

T = TypeVar("T")
#: An optional field that is left out of JSON when it has no value.
OmitNone = Annotated[T | None, Field(exclude_if=lambda value: value is None)]


M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def trusted(model: type[M], values: dict[str, Any]) -> M:
    """An instance of ``model`` made from ``values`` that are already valid and complete
    (every field, in field order), without validation or defaults.

    ``model_construct`` does the same in ~12 µs; this does it in ~1 µs, and a
    reply makes several (the hot path, docs/performance.md). It fills the
    attributes pydantic's own model_construct fills; tests/test_records.py
    checks the result equals a validated model and serializes the same.
    """
    instance = model.__new__(model)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", set(values))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


def new_incarnation() -> str:
    """A random mark for one life of a session id."""
    return secrets.token_hex(6)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the only kind we store)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a session was opened from (``client_info`` in the design document's session).

    The web layer clips the header values it copies here (512 and 256 characters).
    """

    ip_address: str | None = None
    user_agent: str | None = None
    accept_language: str | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    """An operator's hold on a conversation: while it lasts the bot does not answer.

    It ends when released, or at ``until`` (the operator's last sign of life plus
    the grace, ``--operator-grace``); the store keeps it atomically, so two
    operators on two nodes cannot both hold one session.
    """

    operator: str
    since: datetime
    until: datetime

    def live(self, now: datetime) -> bool:
        return now < self.until


@dataclass(frozen=True, slots=True)
class Note:
    """An internal note on a conversation: for operators only, never for the customer
    or an agent (not in ``history``, the page, or an agent's context)."""

    operator: str
    content: str
    timestamp: datetime


@dataclass(slots=True)
class SessionRecord:
    """One conversation: who, from where, when, how much."""

    session_id: str
    user_id: str | None
    client_info: ClientInfo
    created_at: datetime
    connected_at: datetime
    last_activity: datetime
    # Never sent to anyone; see chatbuddy.tokens.hash_token.
    token_hash: str = field(repr=False)
    message_count: int = 0
    last_message_id: int | None = None
    #: Which life of this session id this is: random per creation, so a connection
    #: admitted to an earlier session with the same id never reads or writes this one.
    incarnation: str = field(default_factory=new_incarnation)
    #: The operator holding the conversation (the bot is silent meanwhile), if any;
    #: a hold past its ``until`` has run out but may not have been ended yet.
    hold: Hold | None = None
    #: Since when the customer waits for a person (asked, and nobody took it yet).
    waiting_since: datetime | None = None
    #: The last message id the customer's page has shown, and the one the operator has seen.
    read_by_customer: int = 0
    read_by_operator: int = 0

    def token_matches(self, token: str | None) -> bool:
        """Whether ``token`` is this session's token, compared in constant time."""
        return token_matches_hash(self.token_hash, token)


class StoredMessage(BaseModel):
    """A message in a session's history, with its server-assigned id.

    Ids increase within a session, so "everything after id X" is well defined.
    """

    model_config = ConfigDict(frozen=True)

    id: int
    role: Literal["user", "assistant", "operator"]
    content: str
    timestamp: datetime
    user_id: OmitNone[str] = None
    #: The operator's display name, on an operator's message.
    name: OmitNone[str] = None
    client_message_id: OmitNone[str] = None
    in_reply_to: OmitNone[int] = None
    agent: OmitNone[str] = None
    confidence: OmitNone[float] = None
    metadata: OmitNone[dict[str, Any]] = None
    #: True for a reply stopped before it was finished (a ``cancel``): ``content`` is
    #: what was produced until then, possibly nothing.
    cancelled: OmitNone[bool] = None
    #: The customer's reaction to a reply ("up" or "down"), added when history is read.
    reaction: OmitNone[str] = None


def renumbered(message: StoredMessage, id: int) -> StoredMessage:
    """``message`` under the id its store gave it, not validated again (see :func:`trusted`)."""
    return trusted(StoredMessage, {**message.__dict__, "id": id})


def stored_message(
    *,
    id: int,
    role: Literal["user", "assistant", "operator"],
    content: str,
    timestamp: datetime,
    user_id: str | None = None,
    client_message_id: str | None = None,
    in_reply_to: int | None = None,
    agent: str | None = None,
    confidence: float | None = None,
    metadata: dict[str, Any] | None = None,
    cancelled: bool | None = None,
    name: str | None = None,
) -> StoredMessage:
    """A StoredMessage from values the chat layer already checked (see :func:`trusted`)."""
    return trusted(
        StoredMessage,
        {
            "id": id,
            "role": role,
            "content": content,
            "timestamp": timestamp,
            "user_id": user_id,
            "name": name,
            "client_message_id": client_message_id,
            "in_reply_to": in_reply_to,
            "agent": agent,
            "confidence": confidence,
            "metadata": metadata,
            "cancelled": cancelled,
            "reaction": None,
        },
    )
