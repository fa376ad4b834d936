"""The operator's half of the admin API: take a conversation over, talk, note, give it
back, and the list of customers waiting for a person (docs/admin.md, "Taking over").

Every request needs the admin token, names the operator (a display name, not a
proof: the token is), and is recorded in the audit log by its action, never by
what was said.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar

import tornado.web

from chatbuddy.admin_tokens import Role
from chatbuddy.audit import AuditLog
from chatbuddy.chat.handoff import Handoff
from chatbuddy.engine import SessionStore
from chatbuddy.errors import HeldByAnother, NotHolding, SessionNotFound, StorageUnavailable
from chatbuddy.records import utcnow
from chatbuddy.text import is_valid_id, operator_name, operator_text
from chatbuddy.web.admin import AdminHandler, hold_summary, note_summary, session_summary
from chatbuddy.web.auth import AdminAccess, AdminAction
from chatbuddy.web.http import json_error
from chatbuddy.wire.server_frames import iso_time

#: Most sessions `GET /api/v1/handoffs` lists.
MAX_WAITING = 500


class OperatorHandler(AdminHandler):
    """Base of the operator's endpoints: a JSON body, one error shape, one audit record."""

    def initialize(self, access: AdminAccess, handoff: Handoff, audit: AuditLog) -> None:
        # Checks the admin token.
        self._access = access
        # Carries the actions out (and tells the customer's tabs).
        self._handoff = handoff
        # Each action is recorded (who, what, which session; never the text).
        self._audit = audit

    def body(self) -> dict[str, Any]:
        """The request's JSON object (empty without a body); 400 if it is not one."""
        if not self.request.body:
            return {}
        try:
            document = json.loads(self.request.body)
        except ValueError:
            raise tornado.web.HTTPError(400, reason="the body is not JSON") from None
        if not isinstance(document, dict):
            raise tornado.web.HTTPError(400, reason="the body must be a JSON object")
        return document

    def operator(self, document: dict[str, Any]) -> str:
        """Who acts, as the customer sees them. A token of the tokens file is one
        person's and acts under its own name (so no operator can hold, write or
        release as another); the server's own admin token names the operator in the
        body or ``?operator=``."""
        raw = document.get("operator", self.get_query_argument("operator", None))
        admin = self.admin
        if admin is not None and not admin.server_token:
            if raw is not None and raw != admin.name:
                raise tornado.web.HTTPError(
                    403,
                    reason=f"the token {admin.name!r} acts as {admin.name!r}, not as {raw!r}: "
                    f"give that name (chatbuddy takeover --as {admin.name}) or none",
                )
            return self.checked(operator_name, admin.name)
        if not isinstance(raw, str):
            raise tornado.web.HTTPError(400, reason="say who you are: give 'operator' (a name)")
        return self.checked(operator_name, raw)

    def checked(self, check: Callable[[str], str], value: object) -> str:
        if not isinstance(value, str):
            raise tornado.web.HTTPError(400, reason=f"expected text, got {type(value).__name__}")
        try:
            return check(value)
        except ValueError as error:
            raise tornado.web.HTTPError(400, reason=str(error)) from None

    async def act(
        self,
        session_id: str,
        action: AdminAction,
        operator: str | None,
        work: Callable[[], Awaitable[dict[str, Any]]],
        *,
        chars: int | None = None,
        status: int = 200,
    ) -> None:
        """Run ``work`` and answer with what it returns, or with the error that stopped it;
        either way, record the action in the audit log."""
        if not is_valid_id(session_id):
            raise tornado.web.HTTPError(404, reason=f"no session {session_id[:128]!r}")
        try:
            document = await work()
        except SessionNotFound:
            status = 404
            json_error(self, 404, "not_found", f"no session {session_id!r}")
        except HeldByAnother as held:
            status = 409
            self.set_status(409)
            self.finish(
                json.dumps(
                    {"error": {"type": "held", "message": str(held), "operator": held.operator}},
                    ensure_ascii=False,
                )
            )
        except NotHolding as error:
            status = 409
            json_error(self, 409, "not_holding", str(error))
        except StorageUnavailable:
            status = 503
            json_error(self, 503, "storage_unavailable", "the store is unavailable; retry shortly")
        else:
            self.write_json(document, status=status)
        self._audit.record(
            "operator_action",
            session_id=session_id,
            action=action,
            operator=operator,
            chars=chars,
            status=status,
            ip=self.request.remote_ip,
        )


class HoldHandler(OperatorHandler):
    """``POST /api/v1/sessions/{id}/hold``: take the conversation over (or extend the
    hold); ``DELETE``: give it back to the assistant."""

    actions: ClassVar[dict[str, AdminAction]] = {
        "POST": AdminAction.TAKE_OVER,
        "DELETE": AdminAction.RELEASE,
    }

    async def post(self, session_id: str) -> None:
        operator = self.operator(self.body())

        async def take() -> dict[str, Any]:
            outcome = await self._handoff.take(session_id, operator)
            return {
                "hold": hold_summary(outcome.hold),
                "renewed": outcome.renewed,
                "grace_seconds": self._handoff.grace,
            }

        await self.act(session_id, AdminAction.TAKE_OVER, operator, take)

    async def delete(self, session_id: str) -> None:
        force = self.get_query_argument("force", "") in ("1", "true")
        if force and (self.admin is None or self.admin.role < Role.ADMIN):
            # Ending whoever's hold is the shop's decision, not a colleague's.
            raise tornado.web.HTTPError(
                403, reason="ending another operator's hold (force) needs the role 'admin'"
            )
        operator = None if force else self.operator(self.body())

        async def release() -> dict[str, Any]:
            return {"released": hold_summary(await self._handoff.release(session_id, operator))}

        await self.act(session_id, AdminAction.RELEASE, operator, release)


class MessagesHandler(OperatorHandler):
    """``POST /api/v1/sessions/{id}/messages``: say something to the customer (taking
    the conversation over if not yet)."""

    actions: ClassVar[dict[str, AdminAction]] = {"POST": AdminAction.SAY}

    async def post(self, session_id: str) -> None:
        document = self.body()
        operator = self.operator(document)
        content = self.checked(operator_text, document.get("content"))

        async def say() -> dict[str, Any]:
            stored = await self._handoff.say(session_id, operator, content)
            return {"message": stored.model_dump(mode="json", exclude_none=True)}

        await self.act(session_id, AdminAction.SAY, operator, say, chars=len(content), status=201)


class NotesHandler(OperatorHandler):
    """``POST /api/v1/sessions/{id}/notes``: keep an internal note (operators only)."""

    actions: ClassVar[dict[str, AdminAction]] = {"POST": AdminAction.NOTE}

    async def post(self, session_id: str) -> None:
        document = self.body()
        operator = self.operator(document)
        content = self.checked(operator_text, document.get("content"))

        async def note() -> dict[str, Any]:
            return {"note": note_summary(await self._handoff.note(session_id, operator, content))}

        await self.act(session_id, AdminAction.NOTE, operator, note, chars=len(content), status=201)


class TypingHandler(OperatorHandler):
    """``POST /api/v1/sessions/{id}/typing``: ``{"typing": true}`` while the holder types."""

    actions: ClassVar[dict[str, AdminAction]] = {"POST": AdminAction.TYPE}

    async def post(self, session_id: str) -> None:
        document = self.body()
        operator = self.operator(document)
        on = document.get("typing")
        if not isinstance(on, bool):
            raise tornado.web.HTTPError(400, reason="'typing' must be true or false")

        async def typing() -> dict[str, Any]:
            await self._handoff.typing(session_id, operator, on)
            return {"typing": on}

        await self.act(session_id, AdminAction.TYPE, operator, typing)


class ReadHandler(OperatorHandler):
    """``POST /api/v1/sessions/{id}/read``: the holder has seen up to ``message_id``."""

    actions: ClassVar[dict[str, AdminAction]] = {"POST": AdminAction.MARK_READ}

    async def post(self, session_id: str) -> None:
        document = self.body()
        operator = self.operator(document)
        message_id = document.get("message_id")
        if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id < 1:
            raise tornado.web.HTTPError(400, reason="'message_id' must be a message id (1, 2, ...)")

        async def read() -> dict[str, Any]:
            return {"read_by_operator": await self._handoff.read(session_id, operator, message_id)}

        await self.act(session_id, AdminAction.MARK_READ, operator, read)


class WaitingHandler(AdminHandler):
    """``GET /api/v1/handoffs?limit=``: customers waiting for a person that nobody took
    yet, the one waiting longest first, with how long they have waited."""

    def initialize(self, access: AdminAccess, store: SessionStore) -> None:
        # Checks the admin token.
        self._access = access
        # Knows who waits.
        self._store = store

    async def get(self) -> None:
        raw = self.get_query_argument("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_WAITING:
            raise tornado.web.HTTPError(400, reason=f"limit must be 1..{MAX_WAITING}, got {raw!r}")
        records = await self._store.waiting(limit=int(raw))
        now = utcnow()
        self.write_json(
            {
                "waiting": [
                    {
                        **session_summary(r, 0),
                        "waited_seconds": round(_seconds(now, r.waiting_since), 1),
                    }
                    for r in records
                ],
                "timestamp": iso_time(now),
            }
        )


def _seconds(now: datetime, since: datetime | None) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())
