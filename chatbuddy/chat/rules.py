"""The rules for each frame a client sends, as a decision and nothing else.

:func:`decide` takes a frame and what is known about its sender and returns an
outcome: send this frame back, queue this message for a reply, refuse with this
error, or look something up and show it. It does no I/O and knows no socket,
the way websockets' protocol core returns events instead of acting;
:class:`chatbuddy.chat.service.ChatService` carries the outcome out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from chatbuddy.chat import frames
from chatbuddy.chat.ratelimit import TokenBucket
from chatbuddy.errors import ClientError, ErrorType
from chatbuddy.records import StoredMessage, utcnow
from chatbuddy.wire.client_frames import (
    Cancel,
    ChatMessage,
    HandoffRequest,
    HistoryRequest,
    Ping,
    React,
    Read,
    SessionInfoRequest,
    Typing,
    parse_client_message,
)
from chatbuddy.wire.close_codes import Close


@dataclass(slots=True)
class Peer:
    """What the rules know about one open connection."""

    connection_id: str
    session_id: str
    user_id: str | None
    #: The life of the session it was admitted to (see SessionRecord.incarnation).
    incarnation: str = ""
    #: Its user, verified by a signed identity (None: anonymous, or a label only).
    verified_user: str | None = None
    #: The client's address (for the audit log).
    ip: str | None = None
    #: Chat-message budgets it draws on, named: its own, its session's and its
    #: address's (shared with every connection of them); empty when limits are off.
    limits: tuple[tuple[str, TokenBucket], ...] = ()
    #: Every frame it sends, of any type (None: no limit).
    frames: TokenBucket | None = None
    #: Refusals it may earn before it is disconnected (None: never).
    strikes: TokenBucket | None = None


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """A validated chat message waiting for its turn to be answered."""

    session_id: str
    connection_id: str
    user_id: str | None
    content: str
    client_message_id: str | None
    #: The life of the session the sender was admitted to.
    incarnation: str = ""
    #: The sender's verified user (a signed identity's subject), for the agent.
    verified_user: str | None = None
    #: Resolved with the stored reply (or the ClientError that stopped it) for a
    #: sender that waits for it besides the session's tabs: an HTTP chat request.
    answer: asyncio.Future[StoredMessage] | None = None
    #: Cancelled while it waited: it is stored, with an empty cancelled reply.
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``frame`` back to the connection that asked."""

    frame: str


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Queue ``message`` for a reply, after the session's earlier messages."""

    message: PendingMessage


@dataclass(frozen=True, slots=True)
class Refuse:
    """Tell the connection that its frame was not accepted, and why."""

    error: ClientError
    #: The rate limit that refused it (connection, session, address, frames, queue), if one did.
    limit: str | None = None


@dataclass(frozen=True, slots=True)
class ShowSessionInfo:
    """Read the session and send it as ``session_info``."""

    request_type: str = "session_info"


@dataclass(frozen=True, slots=True)
class ShowHistory:
    """Read stored messages after ``after`` and send them as ``history``."""

    after: int | None
    limit: int
    request_type: str = "history"


@dataclass(frozen=True, slots=True)
class StopReply:
    """Stop the session's reply ``message_id``, or the reply to its message
    ``client_message_id`` (queued or being written), on whichever node writes it."""

    session_id: str
    incarnation: str
    message_id: int | None
    client_message_id: str | None
    request_type: str = "cancel"


@dataclass(frozen=True, slots=True)
class ShowTyping:
    """Tell operators watching the session that the customer types (or stopped)."""

    state: str
    request_type: str = "typing"


@dataclass(frozen=True, slots=True)
class MarkRead:
    """Store that the customer's page has shown the conversation up to ``message_id``."""

    message_id: int
    request_type: str = "read"


@dataclass(frozen=True, slots=True)
class SetReaction:
    """Store the customer's reaction to reply ``message_id`` (None: take it back)."""

    message_id: int
    reaction: Literal["up", "down"] | None
    request_type: str = "reaction"


@dataclass(frozen=True, slots=True)
class AskForPerson:
    """The customer asks for a person: they wait until an operator takes over."""

    request_type: str = "handoff_request"


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the connection with ``code`` (it broke the rules again and again)."""

    code: int
    reason: str


Outcome = (
    Send
    | Enqueue
    | Refuse
    | ShowSessionInfo
    | ShowHistory
    | ShowTyping
    | MarkRead
    | SetReaction
    | AskForPerson
    | StopReply
    | Disconnect
)


def decide(
    frame: str | bytes,
    peer: Peer,
    *,
    waiting: int,
    max_waiting: int,
    draining: bool = False,
    clock: Callable[[], datetime] = utcnow,
) -> Outcome:
    """What to do with ``frame`` from ``peer``.

    ``waiting`` is how many of the session's messages wait for a reply; past
    ``max_waiting`` a new one is refused (a flood guard beside the rate
    limits). While the server ``draining`` (shutting down), chat messages are
    refused with a retryable error. A peer that runs out of strikes (every
    refusal is one) is disconnected with 1008.
    """
    outcome = _decide(frame, peer, waiting, max_waiting, draining, clock)
    if isinstance(outcome, Refuse):
        return strike(peer) or outcome
    return outcome


def strike(peer: Peer) -> Disconnect | None:
    """Count a violation; the Disconnect once the peer has had too many."""
    if peer.strikes is None or peer.strikes.try_acquire():
        return None
    return Disconnect(Close.POLICY_VIOLATION, "too many refused frames")


def _decide(
    frame: str | bytes,
    peer: Peer,
    waiting: int,
    max_waiting: int,
    draining: bool,
    clock: Callable[[], datetime],
) -> Outcome:
    if peer.frames is not None and not peer.frames.try_acquire():
        return Refuse(
            ClientError(
                ErrorType.RATE_LIMITED,
                f"too many frames; the limit is {peer.frames.rate:g} per second",
            ),
            limit="frames",
        )
    try:
        message = parse_client_message(frame)
    except ClientError as error:
        return Refuse(error)
    if isinstance(message, ChatMessage):
        if draining:
            return Refuse(
                ClientError(
                    ErrorType.SHUTTING_DOWN,
                    "the server is restarting; send it again once reconnected",
                    request_type=message.type,
                    client_message_id=message.client_message_id,
                )
            )
        return _chat_message(message, peer, waiting=waiting, max_waiting=max_waiting)
    if isinstance(message, Ping):
        return Send(frames.pong(peer.session_id, message.timestamp, clock()))
    if isinstance(message, SessionInfoRequest):
        return ShowSessionInfo()
    if isinstance(message, Cancel):
        # Any tab of the session may stop its replies; only its own session's.
        return StopReply(
            peer.session_id, peer.incarnation, message.message_id, message.client_message_id
        )
    if isinstance(message, HistoryRequest):
        return ShowHistory(after=message.after, limit=message.limit)
    return _about_the_conversation(message)


def _about_the_conversation(message: Typing | Read | React | HandoffRequest) -> Outcome:
    """Frames of a conversation with a person in it; every one drew on the frame budget."""
    if isinstance(message, Typing):
        return ShowTyping(message.state)
    if isinstance(message, Read):
        return MarkRead(message.message_id)
    if isinstance(message, React):
        return SetReaction(message.message_id, message.reaction)
    return AskForPerson()


def _chat_message(message: ChatMessage, peer: Peer, *, waiting: int, max_waiting: int) -> Outcome:
    kind = message.type
    if message.session_id != peer.session_id:
        return Refuse(
            ClientError(
                ErrorType.SESSION_MISMATCH,
                f"session_id {message.session_id!r} does not match this connection's "
                f"session {peer.session_id!r}",
                request_type=kind,
                client_message_id=message.client_message_id,
            )
        )
    if message.user_id is not None and message.user_id != peer.user_id:
        return Refuse(
            ClientError(
                ErrorType.VALIDATION_ERROR,
                f"user_id {message.user_id!r} does not match this connection's user "
                f"{peer.user_id!r}",
                request_type=kind,
                client_message_id=message.client_message_id,
            )
        )
    for whose, budget in peer.limits:
        if not budget.try_acquire():
            return Refuse(
                ClientError(
                    ErrorType.RATE_LIMITED,
                    f"too many messages from this {whose}; the limit is {budget.rate:g} per second",
                    request_type=kind,
                    client_message_id=message.client_message_id,
                ),
                limit=whose,
            )
    if waiting >= max_waiting:
        return Refuse(
            ClientError(
                ErrorType.RATE_LIMITED,
                f"{waiting} messages are already waiting for a reply; try again shortly",
                request_type=kind,
                client_message_id=message.client_message_id,
            ),
            limit="queue",
        )
    return Enqueue(
        PendingMessage(
            session_id=peer.session_id,
            connection_id=peer.connection_id,
            user_id=peer.user_id,
            content=message.content,
            client_message_id=message.client_message_id,
            incarnation=peer.incarnation,
            verified_user=peer.verified_user,
        )
    )
