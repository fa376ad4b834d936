"""The admin API: sessions, stats and the live event tail, behind the admin token
(:class:`chatbuddy.web.auth.AdminAccess`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import tornado.web
import tornado.websocket

from chatbuddy.chat import LocalNode
from chatbuddy.chat.counters import Counters, stats_document
from chatbuddy.engine import Bus, SessionStore
from chatbuddy.errors import ConnectionClosed
from chatbuddy.records import SessionRecord
from chatbuddy.text import is_valid_id
from chatbuddy.web.auth import AdminAccess
from chatbuddy.web.http import JsonHandler, QuietErrors, json_error
from chatbuddy.wire.protocol import iso_time

MAX_PAGE = 500


def session_summary(record: SessionRecord, connections: int) -> dict[str, Any]:
    """A session as the admin API shows it (never its token hash)."""
    return {
        "session_id": record.session_id,
        "user_id": record.user_id,
        "client_info": dataclasses.asdict(record.client_info),
        "created_at": iso_time(record.created_at),
        "connected_at": iso_time(record.connected_at),
        "last_activity": iso_time(record.last_activity),
        "message_count": record.message_count,
        "last_message_id": record.last_message_id,
        "connections": connections,
    }


class AdminHandler(JsonHandler):
    """Base of the admin API: refuses requests without the admin token."""

    _access: AdminAccess

    def prepare(self) -> None:
        self._access.admit(self)


class StatsHandler(AdminHandler):
    """``GET /api/v1/websocket/stats``: who is connected to every node, and this node's totals."""

    def initialize(
        self, access: AdminAccess, bus: Bus, counters: Counters, engine_name: str
    ) -> None:
        # Checks the admin token.
        self._access = access
        # Knows who is connected on every node.
        self._bus = bus
        # Totals kept by the chat service.
        self._counters = counters
        # Reported in the document ("memory", "redis").
        self._engine_name = engine_name

    async def get(self) -> None:
        presence = await self._bus.cluster_presence()
        self.write_json(stats_document(presence, self._counters, self._engine_name))


class _SessionsBase(AdminHandler):
    def initialize(self, access: AdminAccess, store: SessionStore, bus: Bus) -> None:
        # Checks the admin token.
        self._access = access
        # Reads sessions and history.
        self._store = store
        # Counts each session's connections on every node.
        self._bus = bus


class SessionsHandler(_SessionsBase):
    """``GET /api/v1/sessions?offset=&limit=``: sessions, newest activity first."""

    async def get(self) -> None:
        offset = self._int_argument("offset", 0, 0, 10**9)
        limit = self._int_argument("limit", 50, 1, MAX_PAGE)
        records, total = await self._store.list_sessions(offset=offset, limit=limit)
        counts = (await self._bus.cluster_presence()).sessions
        self.write_json(
            {
                "sessions": [session_summary(r, counts.get(r.session_id, 0)) for r in records],
                "total": total,
                "offset": offset,
                "limit": limit,
            }
        )

    def _int_argument(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise tornado.web.HTTPError(400, reason=f"{name} must be {low}..{high}, got {raw!r}")
        return int(raw)


class SessionHandler(_SessionsBase):
    """``GET /api/v1/sessions/{id}``: one session with its history."""

    async def get(self, session_id: str) -> None:
        store = self._store
        record = await store.get_session(session_id) if is_valid_id(session_id) else None
        if record is None:
            raise tornado.web.HTTPError(404, reason=f"no session {session_id[:128]!r}")
        messages, _ = await store.history(session_id, after=None, limit=10**6, touch=False)
        connections = (await self._bus.cluster_presence()).sessions.get(session_id, 0)
        self.write_json(
            {
                "session": session_summary(record, connections),
                "messages": [m.model_dump(mode="json", exclude_none=True) for m in messages],
            }
        )


class AdminTailHandler(QuietErrors, tornado.websocket.WebSocketHandler):
    """``/ws/admin/tail?session=ID&tool_args=1``: admin events as they happen, one JSON
    frame each (tool calls' arguments only with ``tool_args=1``).

    The admin token, not the browser's origin, authorizes this socket; Tornado's
    own origin check still refuses cross-site pages, so a token leaked in a URL
    cannot be replayed from one.
    """

    def initialize(self, access: AdminAccess, node: LocalNode) -> None:
        # Checks the admin token.
        self._access = access
        # Registers this socket as a watcher of admin events.
        self._node = node
        # Whether open() ran, so on_close knows whether to unwatch.
        self._watching = False

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not self._access.admit(self, query_token=True):
            return
        session = self.get_query_argument("session", None)
        if session is not None and not is_valid_id(session):
            json_error(self, 400, "invalid_identifier", f"invalid session id {session[:40]!r}")
            return
        # Listen to events before the upgrade completes: the client treats the open
        # socket as "watching", and an event published in between would be lost.
        await self._node.listen_to_events()
        try:
            await super().get(*args, **kwargs)
        finally:
            if not self._watching:  # the upgrade failed: nobody came to watch
                self._node.settle_events()

    async def open(self, *args: str, **kwargs: str) -> None:
        self._watching = True
        await self._node.watch(
            self,
            self.get_query_argument("session", None),
            tool_arguments=self.get_query_argument("tool_args", "0") == "1",
        )

    def on_message(self, message: str | bytes) -> None:
        """Watchers only listen; anything they send is ignored."""

    def on_close(self) -> None:
        if self._watching:
            self._node.unwatch(self)

    def send(self, frame: str) -> None:
        try:
            self.write_message(frame).add_done_callback(retrieve_exception)
        except tornado.websocket.WebSocketClosedError:
            raise ConnectionClosed("admin tail") from None


def retrieve_exception(future: Any) -> None:
    """A write that fails later (the peer vanished) is handled by on_close; mark the
    future's exception retrieved so asyncio does not log it as lost."""
    if not future.cancelled():
        future.exception()
