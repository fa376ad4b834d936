"""The admin API: sessions, stats and the live event tail, behind the admin token.

Every handler here requires ``Authorization: Bearer <admin token>`` (the tail
socket also takes ``?token=``, since browsers cannot set headers on a
WebSocket). A missing or wrong token gets 401 with a JSON error; tokens are
compared in constant time.
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web
import tornado.websocket

from chatbuddy.chat import ChatService
from chatbuddy.chat.counters import Counters, stats_document
from chatbuddy.errors import ConnectionClosed
from chatbuddy.records import SessionRecord
from chatbuddy.text import is_valid_id
from chatbuddy.tokens import tokens_match
from chatbuddy.web.http import JsonHandler

MAX_PAGE = 500


def bearer_token(handler: tornado.web.RequestHandler) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def unauthorized_body(given: str | None) -> str:
    if given is None:
        message = "missing admin token: send 'Authorization: Bearer TOKEN' (see chatbuddy --help)"
    else:
        message = "wrong admin token"
    return json.dumps({"error": {"type": "unauthorized", "message": message}})


class AdminHandler(JsonHandler):
    """Base of the admin API: refuses requests without the admin token."""

    def initialize(self, admin_token: str, **_: Any) -> None:
        # The one secret that opens the admin API of this server.
        self._admin_token = admin_token

    def prepare(self) -> None:
        given = bearer_token(self)
        if not tokens_match(self._admin_token, given):
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer realm="chatbuddy-admin"')
            self.finish(unauthorized_body(given))


def session_summary(record: SessionRecord, connections: int) -> dict[str, Any]:
    summary: dict[str, Any] = record.model_dump(mode="json")
    summary["connections"] = connections
    return summary


class StatsHandler(AdminHandler):
    """``GET /api/v1/websocket/stats``: who is connected to this node, and totals."""

    def initialize(  # type: ignore[override]
        self, admin_token: str, service: ChatService, counters: Counters
    ) -> None:
        super().initialize(admin_token)
        # Asks the engine who is connected on every node.
        self._service = service
        # Totals kept by the chat service.
        self._counters = counters

    async def get(self) -> None:
        engine = self._service.engine
        presence = await engine.cluster_presence()
        self.write_json(stats_document(presence, self._counters, engine.name))


class _SessionsBase(AdminHandler):
    def initialize(self, admin_token: str, service: ChatService) -> None:  # type: ignore[override]
        super().initialize(admin_token)
        # Reads sessions, history and presence from the engine.
        self._service = service


class SessionsHandler(_SessionsBase):
    """``GET /api/v1/sessions?offset=&limit=``: sessions, newest activity first."""

    async def get(self) -> None:
        offset = self._int_argument("offset", 0, 0, 10**9)
        limit = self._int_argument("limit", 50, 1, MAX_PAGE)
        engine = self._service.engine
        records, total = await engine.list_sessions(offset=offset, limit=limit)
        counts = (await engine.cluster_presence()).sessions
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
        engine = self._service.engine
        record = await engine.get_session(session_id) if is_valid_id(session_id) else None
        if record is None:
            raise tornado.web.HTTPError(404, reason=f"no session {session_id[:128]!r}")
        messages, _ = await engine.history(session_id, after=None, limit=10**6, touch=False)
        connections = (await engine.cluster_presence()).sessions.get(session_id, 0)
        self.write_json(
            {
                "session": session_summary(record, connections),
                "messages": [m.model_dump(mode="json", exclude_none=True) for m in messages],
            }
        )


class AdminTailHandler(tornado.websocket.WebSocketHandler):
    """``/ws/admin/tail?session=ID``: admin events as they happen, one JSON frame each."""

    def initialize(self, admin_token: str, service: ChatService) -> None:
        # The one secret that opens the admin API of this server.
        self._admin_token = admin_token
        # Registers this socket as a watcher of admin events.
        self._service = service
        # Whether open() ran, so on_close knows whether to unwatch.
        self._watching = False

    async def get(self, *args: Any, **kwargs: Any) -> None:
        given = bearer_token(self) or self.get_query_argument("token", None)
        if not tokens_match(self._admin_token, given):
            self.set_status(401)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(unauthorized_body(given))
            return
        session = self.get_query_argument("session", None)
        if session is not None and not is_valid_id(session):
            self.set_status(400)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            message = f"invalid session id {session[:40]!r}"
            self.finish(json.dumps({"error": {"type": "invalid_identifier", "message": message}}))
            return
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        # The admin token, not the browser's origin, is what authorizes this socket;
        # still refuse cross-site pages so a leaked token in a URL cannot be replayed
        # from one.
        return super().check_origin(origin)

    async def open(self, *args: str, **kwargs: str) -> None:
        self._watching = True
        await self._service.watch(self, self.get_query_argument("session", None))

    def on_message(self, message: str | bytes) -> None:
        """Watchers only listen; anything they send is ignored."""

    def on_close(self) -> None:
        if self._watching:
            self._service.unwatch(self)

    def send(self, frame: str) -> None:
        try:
            self.write_message(frame).add_done_callback(_retrieve)
        except tornado.websocket.WebSocketClosedError:
            raise ConnectionClosed("admin tail") from None


def _retrieve(future: Any) -> None:
    if not future.cancelled():
        future.exception()
