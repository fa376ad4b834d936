"""Engines under test, and a NodeLink that records what they deliver."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from chatbuddy.engine import Frame, Presence, frame_text
from chatbuddy.records import ClientInfo, SessionRecord, StoredMessage, utcnow
from chatbuddy.tokens import hash_token


@dataclass
class RecordingNode:
    """A NodeLink that keeps what the engine delivered to this node."""

    frames: list[tuple[str, str, str | None]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    local: Presence = field(default_factory=Presence)

    def deliver(self, session_id: str, frame: Frame, exclude: str | None) -> None:
        self.frames.append((session_id, frame_text(frame), exclude))

    def deliver_event(self, session_id: str, frame: str) -> None:
        self.events.append((session_id, frame))

    def presence(self) -> Presence:
        return self.local


def record(
    session_id: str = "s1", token: str = "tok", now: datetime | None = None
) -> SessionRecord:
    now = now or utcnow()
    return SessionRecord(
        session_id=session_id,
        user_id="anna",
        client_info=ClientInfo(ip_address="127.0.0.1", user_agent="pytest"),
        created_at=now,
        connected_at=now,
        last_activity=now,
        token_hash=hash_token(token),
    )


def user_message(content: str = "hi", client_message_id: str | None = None) -> StoredMessage:
    return StoredMessage(
        id=0, role="user", content=content, timestamp=utcnow(), client_message_id=client_message_id
    )


def reply(message_id: int, in_reply_to: int, content: str = "hello") -> StoredMessage:
    return StoredMessage(
        id=message_id,
        role="assistant",
        content=content,
        timestamp=utcnow(),
        in_reply_to=in_reply_to,
        agent="general",
        confidence=0.5,
        metadata={"processing_time": 0.001, "agent": "general"},
    )
