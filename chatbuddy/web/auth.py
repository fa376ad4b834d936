"""The admin token check, in one place for every admin endpoint.

Admin endpoints require ``Authorization: Bearer <admin token>`` (the tail
socket also takes ``?token=``, since browsers cannot set headers on a
WebSocket). A missing or wrong token gets 401 with a JSON error; tokens are
compared in constant time.
"""

from __future__ import annotations

from enum import StrEnum

import tornado.web

from chatbuddy.audit import AuditLog
from chatbuddy.tokens import tokens_match
from chatbuddy.web.http import json_error


class AdminAction(StrEnum):
    """Everything the admin API lets one do, named once: the audit log records the
    action of each request, and a role can be given a set of them."""

    READ_STATS = "read_stats"
    READ_SESSIONS = "read_sessions"
    TAIL = "tail"
    TAKE_OVER = "take_over"
    SAY = "say"
    RELEASE = "release"
    NOTE = "note"
    READ_NOTES = "read_notes"
    TYPE = "type"
    MARK_READ = "mark_read"


class AdminAccess:
    """Who may use the admin API of this server."""

    def __init__(self, token: str, audit: AuditLog | None = None) -> None:
        # The one secret that opens the admin API of this server.
        self.token = token
        # Records refused and admitted admin requests (never the token).
        self._audit = audit if audit is not None else AuditLog.disabled()

    def admit(
        self,
        handler: tornado.web.RequestHandler,
        *,
        query_token: bool = False,
        action: AdminAction | None = None,
    ) -> bool:
        """Whether the request carries the admin token (for ``action``); if not, answer
        401 and say why.

        ``query_token`` also accepts ``?token=`` (WebSockets from browsers).
        """
        given = bearer_token(handler)
        if given is None and query_token:
            given = handler.get_query_argument("token", None)
        request = handler.request
        if tokens_match(self.token, given):
            self._audit.record(
                "admin_request", ip=request.remote_ip, admin=request.path[:200], action=action
            )
            return True
        self._audit.record(
            "admin_refused",
            ip=request.remote_ip,
            admin=request.path[:200],
            action=action,
            reason="missing_token" if given is None else "wrong_token",
        )
        if given is None:
            message = (
                "missing admin token: send 'Authorization: Bearer TOKEN' (see chatbuddy --help)"
            )
        else:
            message = "wrong admin token"
        handler.set_header("WWW-Authenticate", 'Bearer realm="chatbuddy-admin"')
        json_error(handler, 401, "unauthorized", message)
        return False


def bearer_token(handler: tornado.web.RequestHandler) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
