"""Every frame the chat layer sends, made in one place (pure functions, no I/O).

The engines store and carry these as opaque text; the wire models they are made
from live in :mod:`chatbuddy.wire.server_frames`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatbuddy.chat.sessions import Grant
from chatbuddy.engine import FrameAround
from chatbuddy.errors import ClientError
from chatbuddy.records import Hold, SessionRecord, StoredMessage, trusted
from chatbuddy.wire.server_frames import (
    ChatResponseChunkData,
    ChatResponseData,
    ConnectionEstablishedData,
    ErrorData,
    HandoffPendingData,
    HistoryData,
    OperatorJoinedData,
    OperatorLeftData,
    PongData,
    ReactionData,
    ReadData,
    ReplyStatusData,
    SessionInfoData,
    TypingData,
    envelope,
    envelope_parts,
)


def greeting(connection_id: str, grant: Grant, now: datetime) -> str:
    sid = grant.session.session_id
    data = ConnectionEstablishedData(
        connection_id=connection_id,
        session_id=sid,
        user_id=grant.user_id,
        timestamp=now,
        session_token=grant.session_token,
        resumed=grant.resumed,
        last_message_id=grant.session.last_message_id,
    )
    return envelope("connection_established", data, sid, now)


def pong(session_id: str, client_timestamp: str | None, now: datetime) -> str:
    data = PongData(timestamp=now, client_timestamp=client_timestamp)
    return envelope("pong", data, session_id, now)


def session_info(record: SessionRecord, connections: int, now: datetime) -> str:
    data = SessionInfoData(
        session_id=record.session_id,
        user_id=record.user_id,
        created_at=record.created_at,
        connected_at=record.connected_at,
        last_activity=record.last_activity,
        message_count=record.message_count,
        client_info=record.client_info,
        connections=connections,
    )
    return envelope("session_info", data, record.session_id, now)


def history(
    session_id: str,
    messages: list[StoredMessage],
    has_more: bool,
    last_message_id: int | None,
    now: datetime,
) -> str:
    data = HistoryData(messages=messages, has_more=has_more, last_message_id=last_message_id)
    return envelope("history", data, session_id, now)


#: Bytes a stored message adds to a history frame besides its text (ids, times, keys).
_MESSAGE_OVERHEAD = 200


def page_within(
    messages: list[StoredMessage], has_more: bool, after: int | None, budget: int
) -> tuple[list[StoredMessage], bool]:
    """At most ``budget`` bytes of ``messages`` for one ``history`` frame (at least one).

    Paging forward (``after`` given) keeps the oldest and says more follow; the
    latest page (no ``after``) keeps the newest. A full page of 200 messages of
    4,000 characters is 1-3 MB of JSON: more than a slow client may have queued.
    """
    sizes = [len(m.content.encode()) + _MESSAGE_OVERHEAD for m in messages]
    if sum(sizes) <= budget:
        return messages, has_more
    order = range(len(messages)) if after is not None else range(len(messages) - 1, -1, -1)
    kept, used = 0, 0
    for index in order:
        if kept and used + sizes[index] > budget:
            break
        kept, used = kept + 1, used + sizes[index]
    if after is not None:
        return messages[:kept], True
    return messages[-kept:], has_more


def user_message_around(
    session_id: str, sent_at: datetime, *, exclude: str, sole_tab: bool = False
) -> FrameAround:
    """The ``user_message`` frame that tells a session's other tabs what was said,
    as the text around the stored message (the store may publish it as it stores)."""
    return FrameAround(
        lambda: envelope_parts("user_message", session_id, sent_at), exclude, sole_tab
    )


def chunk(session_id: str, reply_id: int, index: int, delta: str, now: datetime) -> str:
    data = ChatResponseChunkData(message_id=reply_id, delta=delta, index=index)
    return envelope("chat_response_chunk", data, session_id, now)


def response(
    session_id: str,
    *,
    reply_id: int,
    content: str,
    agent_type: str,
    confidence: float,
    metadata: dict[str, Any],
    in_reply_to: int,
    timestamp: datetime,
    now: datetime,
    cancelled: bool | None = None,
) -> str:
    # Made from values the pipeline checked (the confidence is clamped): not validated again.
    data = trusted(
        ChatResponseData,
        {
            "message_id": reply_id,
            "content": content,
            "agent_type": agent_type,
            "confidence": confidence,
            "timestamp": timestamp,
            "metadata": metadata,
            "in_reply_to": in_reply_to,
            "cancelled": cancelled,
        },
    )
    return envelope("chat_response", data, session_id, now)


def stored_response(session_id: str, reply: StoredMessage, agent_type: str, now: datetime) -> str:
    """A reply from history sent again (to a client that resent its message)."""
    assert reply.in_reply_to is not None, "a stored reply answers a message"
    return response(
        session_id,
        reply_id=reply.id,
        content=reply.content,
        agent_type=agent_type,
        confidence=reply.confidence or 0.0,
        metadata=reply.metadata or {},
        in_reply_to=reply.in_reply_to,
        timestamp=reply.timestamp,
        now=now,
        cancelled=reply.cancelled,
    )


def error(
    failure: ClientError,
    session_id: str | None,
    now: datetime,
    in_reply_to: int | None = None,
    client_message_id: str | None = None,
) -> str:
    data = ErrorData(
        error_type=failure.error_type,
        error_message=failure.message,
        timestamp=now,
        request_type=failure.request_type,
        in_reply_to=in_reply_to,
        retryable=failure.retryable,
        client_message_id=client_message_id or failure.client_message_id,
    )
    return envelope("error", data, session_id, now)


def reply_status(
    session_id: str, *, reply_id: int, in_reply_to: int, tool: str, now: datetime
) -> str:
    """What the assistant is doing before its text comes (a tool running)."""
    data = ReplyStatusData(message_id=reply_id, in_reply_to=in_reply_to, activity="tool", tool=tool)
    return envelope("reply_status", data, session_id, now)


# -- a person in the conversation ------------------------------------------------


def operator_joined(session_id: str, hold: Hold, now: datetime) -> str:
    data = OperatorJoinedData(operator=hold.operator, since=hold.since)
    return envelope("operator_joined", data, session_id, now)


def operator_left(session_id: str, operator: str, reason: str, now: datetime) -> str:
    data = OperatorLeftData(operator=operator, reason=reason)  # type: ignore[arg-type]
    return envelope("operator_left", data, session_id, now)


def operator_message_around(session_id: str, sent_at: datetime) -> FrameAround:
    """The ``operator_message`` frame around the stored message (for every tab)."""
    return FrameAround(lambda: envelope_parts("operator_message", session_id, sent_at), None)


def typing(session_id: str, name: str, on: bool, now: datetime) -> str:
    data = TypingData(who="operator", name=name, state="start" if on else "stop")
    return envelope("typing", data, session_id, now)


def read(session_id: str, reader: str, message_id: int, now: datetime, name: str | None) -> str:
    data = ReadData(reader=reader, message_id=message_id, name=name)  # type: ignore[arg-type]
    return envelope("read", data, session_id, now)


def reaction(session_id: str, message_id: int, value: str | None, now: datetime) -> str:
    data = ReactionData(message_id=message_id, reaction=value)  # type: ignore[arg-type]
    return envelope("reaction", data, session_id, now)


def handoff_pending(session_id: str, since: datetime, now: datetime) -> str:
    return envelope("handoff_pending", HandoffPendingData(waiting_since=since), session_id, now)
