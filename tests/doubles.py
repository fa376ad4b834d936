"""Test doubles that record what they were given: real implementations of our Protocols."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chatbuddy.engine import Frame, Presence, frame_text
from chatbuddy.errors import ConnectionClosed
from chatbuddy.records import utcnow


@dataclass
class RecordingConnection:
    """A Connection that keeps what it was sent; ``alive=False`` makes sends fail."""

    connection_id: str
    session_id: str
    user_id: str | None = None
    remote_ip: str | None = "127.0.0.1"
    incarnation: str = ""
    alive: bool = True
    received: list[str] = field(default_factory=list)

    def send(self, frame: str) -> None:
        if not self.alive:
            raise ConnectionClosed(self.connection_id)
        self.received.append(frame)

    def close(self, code: int, reason: str) -> None:
        self.alive = False


@dataclass
class RecordingNode:
    """A NodeLink that keeps what the bus delivered to this node."""

    frames: list[tuple[str, str, str | None]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    controls: list[tuple[str, str]] = field(default_factory=list)
    closed: list[tuple[str, int, str, str | None]] = field(default_factory=list)
    local: Presence = field(default_factory=Presence)

    def deliver(
        self, session_id: str, frame: Frame, exclude: str | None, incarnation: str | None
    ) -> None:
        self.frames.append((session_id, frame_text(frame), exclude))

    def deliver_event(self, session_id: str, frame: str) -> None:
        self.events.append((session_id, frame))

    def deliver_control(self, session_id: str, message: str) -> None:
        self.controls.append((session_id, message))

    def close_session(
        self, session_id: str, code: int, reason: str, *, only: str | None = None
    ) -> int:
        self.closed.append((session_id, code, reason, only))
        return 0

    def presence(self) -> Presence:
        return self.local


class FakeClock:
    """A clock for stores that tests move forward by hand (``clock=`` of a store)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
