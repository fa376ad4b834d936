"""The admin API: sessions, stats and the live event tail, behind the admin token
and a role each (:class:`chatbuddy.web.auth.AdminAccess`)."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

import tornado.ioloop
import tornado.iostream
import tornado.web
import tornado.websocket

from chatbuddy.audit import AuditLog
from chatbuddy.chat import LocalNode
from chatbuddy.chat.counters import Counters, stats_document
from chatbuddy.engine import Bus, SessionStore
from chatbuddy.engine.store import ReactionTally
from chatbuddy.errors import ConnectionClosed, SessionNotFound
from chatbuddy.records import Hold, Note, SessionRecord
from chatbuddy.text import is_valid_id
from chatbuddy.web.auth import Admin, AdminAccess, AdminAction, bearer_token, role_for
from chatbuddy.web.http import JsonHandler, QuietErrors, json_error
from chatbuddy.wire.close_codes import Close
from chatbuddy.wire.server_frames import iso_time

MAX_PAGE = 500
#: How often an open tail checks that its token is still valid, in seconds.
RECHECK_SECONDS = 2.0
#: Sessions read from the store per page of an export (one page is held at a time).
EXPORT_PAGE = 100
#: Every message of a session, for a transcript.
ALL_MESSAGES = 10**6


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
        "hold": hold_summary(record.hold),
        "waiting_since": iso_time(record.waiting_since) if record.waiting_since else None,
        "read_by_customer": record.read_by_customer,
        "read_by_operator": record.read_by_operator,
    }


def hold_summary(hold: Hold | None) -> dict[str, str] | None:
    """Who holds a conversation, since and until when (None: nobody)."""
    if hold is None:
        return None
    return {
        "operator": hold.operator,
        "since": iso_time(hold.since),
        "until": iso_time(hold.until),
    }


class AdminHandler(JsonHandler):
    """Base of the admin API: refuses requests without a token of the role they need.

    ``actions`` names what each HTTP method of a handler does; the role each action
    needs is :data:`chatbuddy.web.auth.ACTION_ROLES` (a method not named: admin)."""

    _access: AdminAccess
    actions: ClassVar[dict[str, AdminAction]] = {"GET": AdminAction.READ_SESSIONS}
    #: Whose token the request carries; set by prepare() (None: refused there).
    admin: Admin | None = None

    def prepare(self) -> None:
        self.admin = self._access.admit(self, action=self.actions.get(self.request.method or "GET"))


class StatsHandler(AdminHandler):
    """``GET /api/v1/websocket/stats``: who is connected to every node, and this node's totals."""

    actions: ClassVar[dict[str, AdminAction]] = {"GET": AdminAction.READ_STATS}

    def initialize(
        self,
        access: AdminAccess,
        bus: Bus,
        counters: Counters,
        engine_name: str,
        store: SessionStore,
    ) -> None:
        # Checks the admin token.
        self._access = access
        # Knows who is connected on every node.
        self._bus = bus
        # Keeps the customers' reactions to replies.
        self._store = store
        # Totals kept by the chat service.
        self._counters = counters
        # Reported in the document ("memory", "redis").
        self._engine_name = engine_name

    async def get(self) -> None:
        presence = await self._bus.cluster_presence()
        document = stats_document(presence, self._counters, self._engine_name)
        document["reactions"] = reactions_summary(await self._store.reaction_totals())
        self.write_json(document)


def reactions_summary(totals: list[ReactionTally]) -> list[dict[str, Any]]:
    """Reactions per agent and route, with the share of 👍 (so a shop sees where the bot fails)."""
    return [
        {
            "agent": t.agent,
            "route": t.route,
            "up": t.up,
            "down": t.down,
            "up_share": round(t.up / (t.up + t.down), 3),
        }
        for t in totals
    ]


def transcript(
    record: SessionRecord, messages: list[Any], notes: list[Note] | None = None
) -> dict[str, Any]:
    """A session, its messages and operators' notes as an export line has them."""
    summary = session_summary(record, 0)
    del summary["connections"]
    document = {
        "session": summary,
        "messages": [m.model_dump(mode="json", exclude_none=True) for m in messages],
    }
    if notes:
        document["notes"] = [note_summary(n) for n in notes]
    return document


class _SessionsBase(AdminHandler):
    def initialize(
        self, access: AdminAccess, store: SessionStore, bus: Bus, audit: AuditLog
    ) -> None:
        # Checks the admin token.
        self._access = access
        # Reads, and erases, sessions and history.
        self._store = store
        # Counts each session's connections on every node, and closes erased ones' tabs.
        self._bus = bus
        # Exports and erasures are recorded there.
        self._audit = audit

    async def _erase(self, *, session_id: str | None = None, user_id: str | None = None) -> None:
        """Erase, close the erased sessions' tabs on every node, record it, answer."""
        started = time.perf_counter()
        erased = await self._store.erase(session_id=session_id, user_id=user_id)
        if not erased:
            what = f"session {session_id!r}" if session_id else f"sessions of user {user_id!r}"
            json_error(self, 404, "not_found", f"no {what}")
            return
        code = int(Close.SESSION_DELETED)  # an int: the audit log writes numbers as they print
        for sid, incarnation in erased:
            # Only the erased session's tabs: a new session may have taken the id since.
            await self._bus.close_session(sid, code, "session deleted", only=incarnation or None)
        ms = round(1000 * (time.perf_counter() - started), 1)
        ids = [sid for sid, _ in erased]
        for sid in ids:
            self._audit.record(
                "session_erased", session_id=sid, user_id=user_id, code=code, ms=ms, admin=True
            )
        self.write_json({"erased": ids, "close_code": code})


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
    """``GET /api/v1/sessions/{id}``: one session with its history;
    ``DELETE``: erase it (data protection) and close its tabs."""

    actions: ClassVar[dict[str, AdminAction]] = {
        "GET": AdminAction.READ_SESSIONS,
        "DELETE": AdminAction.ERASE,
    }

    async def delete(self, session_id: str) -> None:
        if not is_valid_id(session_id):
            raise tornado.web.HTTPError(404, reason=f"no session {session_id[:128]!r}")
        await self._erase(session_id=session_id)

    async def get(self, session_id: str) -> None:
        store = self._store
        record = await store.get_session(session_id) if is_valid_id(session_id) else None
        if record is None:
            raise tornado.web.HTTPError(404, reason=f"no session {session_id[:128]!r}")
        messages, _ = await store.history(session_id, after=None, limit=10**6, touch=False)
        notes = await store.notes(session_id)
        connections = (await self._bus.cluster_presence()).sessions.get(session_id, 0)
        self.write_json(
            {
                "session": session_summary(record, connections),
                "messages": [m.model_dump(mode="json", exclude_none=True) for m in messages],
                "notes": [note_summary(n) for n in notes],
            }
        )


def note_summary(note: Note) -> dict[str, str]:
    return {
        "operator": note.operator,
        "content": note.content,
        "timestamp": iso_time(note.timestamp),
    }


class UserSessionsHandler(_SessionsBase):
    """``DELETE /api/v1/users/{user_id}/sessions``: erase every session of a customer
    (who knows their user id, not their session ids) and close their tabs."""

    actions: ClassVar[dict[str, AdminAction]] = {"DELETE": AdminAction.ERASE}

    async def delete(self, user_id: str) -> None:
        if not is_valid_id(user_id):
            raise tornado.web.HTTPError(404, reason=f"no user {user_id[:128]!r}")
        await self._erase(user_id=user_id)


class ExportHandler(_SessionsBase):
    """``GET /api/v1/export?since=DATE``: every kept session with its messages, one JSON
    object per line, streamed page by page, then ``{"complete": true, "sessions": N}``
    (a stream without that line was cut short)."""

    # Every transcript at once: an administrator's, like deleting.
    actions: ClassVar[dict[str, AdminAction]] = {"GET": AdminAction.EXPORT}

    async def get(self) -> None:
        since = self._since()
        started = time.perf_counter()
        self.set_header("Content-Type", "application/x-ndjson; charset=utf-8")
        count, cursor = 0, None
        try:
            while True:
                records, cursor = await self._store.export_page(
                    after=cursor, limit=EXPORT_PAGE, since=since
                )
                lines = []
                for record in records:
                    try:
                        messages, _ = await self._store.history(
                            record.session_id, after=None, limit=ALL_MESSAGES, touch=False
                        )
                        notes = await self._store.notes(record.session_id)
                    except SessionNotFound:  # erased or expired since it was listed
                        continue
                    line = transcript(record, messages, notes)
                    lines.append(json.dumps(line, ensure_ascii=False))
                if lines:
                    self.write("\n".join(lines) + "\n")
                    await self.flush()
                count += len(lines)
                if cursor is None:
                    break
        except tornado.iostream.StreamClosedError:
            return  # the client went away
        ms = round(1000 * (time.perf_counter() - started), 1)
        self._audit.record("sessions_exported", count=count, ms=ms, admin=True)
        self.finish(json.dumps({"complete": True, "sessions": count}) + "\n")

    def _since(self) -> datetime | None:
        raw = self.get_query_argument("since", None)
        if raw is None:
            return None
        try:
            since = datetime.fromisoformat(raw)
        except ValueError:
            raise tornado.web.HTTPError(
                400, reason=f"since must be a date like 2024-01-15, got {raw[:40]!r}"
            ) from None
        return since if since.tzinfo is not None else since.replace(tzinfo=UTC)


class AdminTailHandler(QuietErrors, tornado.websocket.WebSocketHandler):
    """``/ws/admin/tail?session=ID&tool_args=1``: admin events as they happen, one JSON
    frame each (tool calls' arguments only with ``tool_args=1``).

    The admin token, not the browser's origin, authorizes this socket; Tornado's
    own origin check still refuses cross-site pages, so a token leaked in a URL
    cannot be replayed from one. A token revoked while its tail is open is
    noticed within :data:`RECHECK_SECONDS` and the tail closed (1008).
    """

    def initialize(self, access: AdminAccess, node: LocalNode) -> None:
        # Checks the admin token.
        self._access = access
        # Registers this socket as a watcher of admin events.
        self._node = node
        # Whether open() ran, so on_close knows whether to unwatch.
        self._watching = False
        # The token it was opened with, checked again now and then (see recheck()).
        self._token: str | None = None
        # The timer of those checks, while the tail is open.
        self._rechecks: tornado.ioloop.PeriodicCallback | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not self._access.admit(self, query_token=True, action=AdminAction.TAIL):
            return
        self._token = bearer_token(self) or self.get_query_argument("token", None)
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
        self._rechecks = tornado.ioloop.PeriodicCallback(self.recheck, RECHECK_SECONDS * 1000)
        self._rechecks.start()
        await self._node.watch(
            self,
            self.get_query_argument("session", None),
            tool_arguments=self.get_query_argument("tool_args", "0") == "1",
        )

    def recheck(self) -> None:
        """Close the tail if its token was revoked (or lost its role) since it opened."""
        if not self._access.still_admits(self._token, role_for(AdminAction.TAIL)):
            self.close(1008, "admin token revoked")

    def on_message(self, message: str | bytes) -> None:
        """Watchers only listen; anything they send is ignored."""

    def on_close(self) -> None:
        if self._rechecks is not None:
            self._rechecks.stop()
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
