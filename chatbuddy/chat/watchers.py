"""Who is watching admin events on this node (``/ws/admin/tail`` sockets)."""

from __future__ import annotations

from typing import Protocol

from chatbuddy.errors import ConnectionClosed
from chatbuddy.wire.events import TOOL_CALL_PREFIX, without_arguments


class Watcher(Protocol):
    """An admin event stream's receiving end."""

    def send(self, frame: str) -> None:
        """Queue ``frame``; raise ConnectionClosed if the watcher is gone."""


class Watchers:
    """Tail sockets, each following every session or just one."""

    def __init__(self) -> None:
        # watcher -> the session it follows, or None for all.
        self._filters: dict[Watcher, str | None] = {}
        # Watchers that asked for tool calls' arguments (they may hold customer data).
        self._with_arguments: set[Watcher] = set()

    def add(
        self, watcher: Watcher, session_id: str | None, *, tool_arguments: bool = False
    ) -> None:
        self._filters[watcher] = session_id
        if tool_arguments:
            self._with_arguments.add(watcher)

    def remove(self, watcher: Watcher) -> None:
        self._filters.pop(watcher, None)
        self._with_arguments.discard(watcher)

    def __len__(self) -> int:
        return len(self._filters)

    def deliver(self, session_id: str, frame: str) -> None:
        """Send an event of ``session_id`` to each watcher that follows it."""
        stripped: str | None = None
        for watcher, wanted in list(self._filters.items()):
            if wanted is not None and wanted != session_id:
                continue
            sent = frame
            if frame.startswith(TOOL_CALL_PREFIX) and watcher not in self._with_arguments:
                stripped = stripped if stripped is not None else without_arguments(frame)
                sent = stripped
            try:
                watcher.send(sent)
            except ConnectionClosed:
                self.remove(watcher)
