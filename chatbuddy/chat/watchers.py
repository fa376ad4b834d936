"""Who is watching admin events on this node (``/ws/admin/tail`` sockets)."""

from __future__ import annotations

from typing import Protocol

from chatbuddy.errors import ConnectionClosed


class Watcher(Protocol):
    """An admin event stream's receiving end."""

    def send(self, frame: str) -> None:
        """Queue ``frame``; raise ConnectionClosed if the watcher is gone."""


class Watchers:
    """Tail sockets, each following every session or just one."""

    def __init__(self) -> None:
        # watcher -> the session it follows, or None for all.
        self._filters: dict[Watcher, str | None] = {}

    def add(self, watcher: Watcher, session_id: str | None) -> None:
        self._filters[watcher] = session_id

    def remove(self, watcher: Watcher) -> None:
        self._filters.pop(watcher, None)

    def __len__(self) -> int:
        return len(self._filters)

    def deliver(self, session_id: str, frame: str) -> None:
        """Send an event of ``session_id`` to each watcher that follows it."""
        for watcher, wanted in list(self._filters.items()):
            if wanted is not None and wanted != session_id:
                continue
            try:
                watcher.send(frame)
            except ConnectionClosed:
                self.remove(watcher)
