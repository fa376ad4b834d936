"""Admin events out of the chat logic, built only when someone watches."""

from __future__ import annotations

from datetime import datetime

from chatbuddy.engine import Engine
from chatbuddy.errors import ClientError
from chatbuddy.wire.events import AdminEvent, ErrorEvent


class EventFeed:
    """Publishes admin events through the engine, so every node's tail sees them.

    Check :attr:`wanted` before building an event: with nobody watching, the
    per-message hot path should not pay for it.
    """

    def __init__(self, engine: Engine) -> None:
        # Carries events to the nodes that watch them.
        self._engine = engine

    @property
    def wanted(self) -> bool:
        return self._engine.events_wanted()

    async def emit(self, event: AdminEvent) -> None:
        await self._engine.publish_event(event.session_id, event.to_json())

    async def error(self, session_id: str, error: ClientError, now: datetime) -> None:
        """Tell watching admins about an ``error`` frame (if anyone watches)."""
        if self.wanted:
            await self.emit(
                ErrorEvent(
                    session_id=session_id,
                    timestamp=now,
                    error_type=error.error_type.value,
                    error_message=error.message,
                    request_type=error.request_type,
                )
            )
