"""The admin token and role check, in one place for every admin endpoint.

Admin endpoints require ``Authorization: Bearer <token>`` (the tail socket also
takes ``?token=``, since browsers cannot set headers on a WebSocket). The token
is the server's own admin token (role ``admin``) or one of the tokens file's
(:mod:`chatbuddy.admin_tokens`), whose role must be at least the one the
endpoint declares. A missing or unknown token gets 401, a token whose role is
too low 403, each with a JSON error that says why; every request, admitted or
refused, is one audit record with the path, the token's name and role (never
the token). Tokens are compared in constant time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import tornado.web

from chatbuddy.admin_tokens import ROLE_NAMES, SERVER_TOKEN_NAME, Role, TokenBook
from chatbuddy.audit import AuditLog
from chatbuddy.tokens import tokens_match
from chatbuddy.web.http import json_error


class AdminAction(StrEnum):
    """Everything the admin API lets one do, named once: the audit log records the
    action of each request, and :data:`ACTION_ROLES` gives each the role it needs."""

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
    ERASE = "erase"
    EXPORT = "export"


#: The lowest role that may do each action (an action not listed, or none: admin).
ACTION_ROLES: dict[AdminAction, Role] = {
    AdminAction.READ_STATS: Role.STATS,
    AdminAction.READ_SESSIONS: Role.VIEWER,
    AdminAction.TAIL: Role.VIEWER,
    AdminAction.TAKE_OVER: Role.OPERATOR,
    AdminAction.SAY: Role.OPERATOR,
    AdminAction.RELEASE: Role.OPERATOR,
    AdminAction.NOTE: Role.OPERATOR,
    AdminAction.READ_NOTES: Role.OPERATOR,
    AdminAction.TYPE: Role.OPERATOR,
    AdminAction.MARK_READ: Role.OPERATOR,
    AdminAction.ERASE: Role.ADMIN,
    AdminAction.EXPORT: Role.ADMIN,
}


def role_for(action: AdminAction | None) -> Role:
    """The lowest role that may do ``action`` (admin for an unnamed one)."""
    return Role.ADMIN if action is None else ACTION_ROLES.get(action, Role.ADMIN)


@dataclass(frozen=True)
class Admin:
    """Who made an admin request: the token's name and its role, and whether the token
    is the server's own (the shop owner's on the server's machine) or one person's
    from the tokens file."""

    name: str
    role: Role
    server_token: bool = False


class AdminAccess:
    """Who may use the admin API of this server, and for what."""

    def __init__(
        self, token: str, audit: AuditLog | None = None, book: TokenBook | None = None
    ) -> None:
        # The server's own token: role admin (the CLI on this machine reads it from a file).
        self.token = token
        # Further tokens with their roles (serve --admin-tokens-file), or None.
        self._book = book
        # Records refused and admitted admin requests (never the token).
        self._audit = audit if audit is not None else AuditLog.disabled()

    def identify(self, given: str | None) -> Admin | None:
        """Whose token ``given`` is, with its role; None for no token or an unknown one."""
        if given is None:
            return None
        if tokens_match(self.token, given):
            return Admin(SERVER_TOKEN_NAME, Role.ADMIN, server_token=True)
        entry = self._book.holder(given) if self._book is not None else None
        return None if entry is None else Admin(entry.name, entry.role)

    def admit(
        self,
        handler: tornado.web.RequestHandler,
        *,
        query_token: bool = False,
        action: AdminAction | None = None,
    ) -> Admin | None:
        """Who asks, if their token has the role ``action`` needs (:func:`role_for`); if
        not, answer 401 (no or an unknown token) or 403 (a lower role) and say why, and
        return None.

        ``query_token`` also accepts ``?token=`` (WebSockets from browsers).
        """
        given = bearer_token(handler)
        if given is None and query_token:
            given = handler.get_query_argument("token", None)
        request = handler.request
        where = request.path[:200]
        role = role_for(action)
        admin = self.identify(given)
        if admin is None:
            self._audit.record(
                "admin_refused",
                ip=request.remote_ip,
                admin=where,
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
            return None
        if admin.role < role:
            self._audit.record(
                "admin_refused",
                ip=request.remote_ip,
                admin=where,
                action=action,
                holder=admin.name,
                role=admin.role.label,
                reason="role_too_low",
            )
            json_error(
                handler,
                403,
                "forbidden",
                f"{request.method} {where} needs the role {role.label!r} or higher; the "
                f"token {admin.name!r} has {admin.role.label!r} (roles: {ROLE_NAMES})",
            )
            return None
        self._audit.record(
            "admin_request",
            ip=request.remote_ip,
            admin=where,
            action=action,
            holder=admin.name,
            role=admin.role.label,
        )
        return admin

    def still_admits(self, given: str | None, role: Role) -> bool:
        """Whether ``given`` still has ``role`` (a token revoked since is refused)."""
        admin = self.identify(given)
        return admin is not None and admin.role >= role


def bearer_token(handler: tornado.web.RequestHandler) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
