"""Admin events out of the chat logic: one method per event, each built only when
someone watches, published through the bus so every node's tail sees it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from chatbuddy.engine import Bus
from chatbuddy.errors import ClientError
from chatbuddy.wire.events import (
    AdminEvent,
    ConnectionClosedEvent,
    ConnectionOpenedEvent,
    ErrorEvent,
    HandoffRequestedEvent,
    ReplyChunkEvent,
    ReplyDoneEvent,
    ToolCallEvent,
    UserMessageEvent,
)


class EventFeed:
    """What admins watching ``chatbuddy tail`` are told.

    Every method returns at once when nobody watches: the per-message hot path
    does not pay for events no one reads.
    """

    def __init__(self, bus: Bus) -> None:
        # Carries events to the nodes that watch them, and knows whether any does.
        self._bus = bus

    @property
    def wanted(self) -> bool:
        """Whether any node watches events now."""
        return self._bus.events_wanted()

    async def opened(
        self,
        session_id: str,
        now: datetime,
        *,
        connection_id: str,
        user_id: str | None,
        ip_address: str | None,
        resumed: bool,
    ) -> None:
        if self._bus.events_wanted():
            await self._emit(
                ConnectionOpenedEvent(
                    session_id=session_id,
                    timestamp=now,
                    connection_id=connection_id,
                    user_id=user_id,
                    ip_address=ip_address,
                    resumed=resumed,
                )
            )

    async def closed(
        self,
        session_id: str,
        now: datetime,
        *,
        connection_id: str,
        close_code: int | None,
        duration: float,
    ) -> None:
        if self._bus.events_wanted():
            await self._emit(
                ConnectionClosedEvent(
                    session_id=session_id,
                    timestamp=now,
                    connection_id=connection_id,
                    close_code=close_code,
                    duration=round(duration, 3),
                )
            )

    async def user_message(
        self, session_id: str, now: datetime, *, message_id: int, user_id: str | None, content: str
    ) -> None:
        if self._bus.events_wanted():
            await self._emit(
                UserMessageEvent(
                    session_id=session_id,
                    timestamp=now,
                    message_id=message_id,
                    user_id=user_id,
                    content=content,
                )
            )

    async def chunk(
        self, session_id: str, now: datetime, *, message_id: int, index: int, delta: str
    ) -> None:
        if self._bus.events_wanted():
            await self._emit(
                ReplyChunkEvent(
                    session_id=session_id,
                    timestamp=now,
                    message_id=message_id,
                    index=index,
                    delta=delta,
                )
            )

    async def done(
        self,
        session_id: str,
        now: datetime,
        *,
        message_id: int,
        in_reply_to: int,
        agent: str,
        confidence: float,
        processing_time: float,
        content: str,
    ) -> None:
        if self._bus.events_wanted():
            await self._emit(
                ReplyDoneEvent(
                    session_id=session_id,
                    timestamp=now,
                    message_id=message_id,
                    in_reply_to=in_reply_to,
                    agent=agent,
                    confidence=confidence,
                    processing_time=processing_time,
                    content=content,
                )
            )

    async def handoff_requested(
        self,
        session_id: str,
        now: datetime,
        *,
        message_id: int | None,
        user_id: str | None,
        reason: str,
        language: str | None,
    ) -> None:
        """The reply ``message_id`` (or the customer's button) asked for a person."""
        if self._bus.events_wanted():
            await self._emit(
                HandoffRequestedEvent(
                    session_id=session_id,
                    timestamp=now,
                    message_id=message_id,
                    user_id=user_id,
                    reason=reason,
                    language=language,
                )
            )

    async def tool_call(
        self,
        session_id: str,
        now: datetime,
        *,
        message_id: int,
        tool: str,
        seconds: float,
        ok: bool,
        arguments: dict[str, Any],
    ) -> None:
        """A tool ran for reply ``message_id`` (watchers get its arguments only on request)."""
        if self._bus.events_wanted():
            await self._emit(
                ToolCallEvent(
                    session_id=session_id,
                    timestamp=now,
                    message_id=message_id,
                    tool=tool,
                    seconds=round(seconds, 6),
                    ok=ok,
                    arguments=arguments,
                )
            )

    async def error(self, session_id: str, now: datetime, failure: ClientError) -> None:
        """An ``error`` frame was sent in the session."""
        if self._bus.events_wanted():
            await self._emit(
                ErrorEvent(
                    session_id=session_id,
                    timestamp=now,
                    error_type=failure.error_type.value,
                    error_message=failure.message,
                    request_type=failure.request_type,
                )
            )

    async def event(self, make: Callable[[], AdminEvent]) -> None:
        """Any other event (the hand-off's), made only when someone watches."""
        if self._bus.events_wanted():
            await self._emit(make())

    async def _emit(self, event: AdminEvent) -> None:
        await self._bus.publish_event(event.session_id, event.to_json())
