"""Test doubles that record what they were given: real implementations of our Protocols."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatbuddy.errors import ConnectionClosed


@dataclass
class RecordingConnection:
    """A Connection that keeps what it was sent; ``alive=False`` makes sends fail."""

    connection_id: str
    session_id: str
    user_id: str | None = None
    alive: bool = True
    received: list[str] = field(default_factory=list)

    def send(self, frame: str) -> None:
        if not self.alive:
            raise ConnectionClosed(self.connection_id)
        self.received.append(frame)

    def close(self, code: int, reason: str) -> None:
        self.alive = False
