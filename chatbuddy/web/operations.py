"""Every JSON endpoint of the HTTP API, named once: :data:`OPERATIONS`.

Each :class:`Operation` is one method of one path, with the handler that
serves it, who may call it and the models of its bodies
(:mod:`chatbuddy.wire.api`); :mod:`chatbuddy.web.openapi` turns the table into
``/openapi.json``. ``tests/test_api_docs.py`` checks that every route of the
application is here (or is a page, an asset or a socket), and that the live
answers of a real server match the models, so a new endpoint cannot be left out
and an answer cannot drift from its schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tornado.web
from pydantic import BaseModel

from chatbuddy.web.admin import (
    ExportHandler,
    SessionHandler,
    SessionsHandler,
    StatsHandler,
    UserSessionsHandler,
)
from chatbuddy.web.chat_http import TOKEN_HEADER, ChatOverHttpHandler
from chatbuddy.web.http import HealthHandler, ReadyHandler
from chatbuddy.web.metrics import MetricsHandler
from chatbuddy.web.operator import (
    HoldHandler,
    MessagesHandler,
    NotesHandler,
    ReadHandler,
    TypingHandler,
    WaitingHandler,
)
from chatbuddy.web.widget import WidgetConfigHandler
from chatbuddy.wire.api import (
    ChatReply,
    ChatRequest,
    Erased,
    ErrorBody,
    ExportLine,
    Health,
    OperatorRead,
    OperatorRequest,
    OperatorText,
    OperatorTyping,
    Readiness,
    SessionDetail,
    SessionsPage,
    Stats,
    WidgetConfig,
)


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str  # "query" | "path"
    description: str
    schema: dict[str, Any]
    required: bool = False


@dataclass(frozen=True)
class Lines:
    """An answer of JSON lines (``application/x-ndjson``), each one a ``model``."""

    model: type[BaseModel]
    description: str


@dataclass(frozen=True)
class Operation:
    """One method of one path."""

    method: str
    #: The path as OpenAPI writes it: ``/api/v1/sessions/{session_id}``.
    path: str
    handler: type[tornado.web.RequestHandler]
    summary: str
    description: str = ""
    #: "admin": an admin token (the ``stats`` role opens stats and metrics).
    auth: str | None = None
    tag: str = "chat"
    body: type[BaseModel] | None = None
    #: status -> the model of the JSON answer (or a media type and a description).
    answers: dict[int, type[BaseModel] | tuple[str, str] | Lines] = field(default_factory=dict)
    parameters: tuple[Parameter, ...] = ()
    #: Headers of a successful answer: name -> description.
    answer_headers: dict[str, str] = field(default_factory=dict)


_ADMIN_ERRORS: dict[int, type[BaseModel] | tuple[str, str] | Lines] = {401: ErrorBody}
_SESSION_ID = Parameter(
    "session_id", "path", "The session's id.", {"type": "string", "maxLength": 128}, True
)

_OPERATOR_ERRORS: dict[int, type[BaseModel] | tuple[str, str] | Lines] = {
    400: ErrorBody,
    404: ErrorBody,
    409: ErrorBody,
    503: ErrorBody,
    **_ADMIN_ERRORS,
}


def _operator(
    method: str,
    action: str,
    handler: type[tornado.web.RequestHandler],
    summary: str,
    body: type[BaseModel] | None,
    answer: str,
    status: int = 200,
) -> Operation:
    """One of the operator's endpoints on a session (docs/admin.md, "Taking over")."""
    return Operation(
        method,
        f"/api/v1/sessions/{{session_id}}/{action}",
        handler,
        summary,
        "409 when another operator holds the conversation (or, to give it back, when you do not).",
        auth="admin",
        tag="operator",
        body=body,
        answers={status: ("application/json", answer), **_OPERATOR_ERRORS},
        parameters=(_SESSION_ID,),
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/api/v1/chat",
        ChatOverHttpHandler,
        "Send one message, get its reply",
        "For clients that cannot keep a WebSocket: the original API's shapes, the chat "
        "socket's rules. Without a token it opens a new session and answers with its token "
        f"in `{TOKEN_HEADER}`; a session that exists needs that token. The message and its "
        "reply reach the session's open tabs too. docs/migrating.md.",
        body=ChatRequest,
        answers={
            200: ChatReply,
            400: ErrorBody,
            403: ErrorBody,
            409: ErrorBody,
            410: ErrorBody,
            415: ErrorBody,
            429: ErrorBody,
            502: ErrorBody,
            503: ErrorBody,
        },
        parameters=(
            Parameter(
                TOKEN_HEADER,
                "header",
                "The session's token, for a session that exists.",
                {"type": "string"},
            ),
        ),
        answer_headers={TOKEN_HEADER: "The session's token: keep it to continue the session."},
    ),
    Operation(
        "get",
        "/api/v1/websocket/stats",
        StatsHandler,
        "Connections, sessions and users, uptime and totals",
        "Who is connected on every node (the original API's shape), and this node's "
        "uptime and counters.",
        auth="admin",
        tag="admin",
        answers={200: Stats, **_ADMIN_ERRORS},
    ),
    Operation(
        "get",
        "/api/v1/sessions",
        SessionsHandler,
        "Sessions, newest activity first",
        auth="admin",
        tag="admin",
        answers={200: SessionsPage, 400: ErrorBody, **_ADMIN_ERRORS},
        parameters=(
            Parameter("offset", "query", "Sessions to skip.", {"type": "integer", "minimum": 0}),
            Parameter(
                "limit",
                "query",
                "Sessions to return (default 50).",
                {"type": "integer", "minimum": 1, "maximum": 500},
            ),
        ),
    ),
    Operation(
        "get",
        "/api/v1/sessions/{session_id}",
        SessionHandler,
        "One session with its history",
        "Its messages carry what customers wrote: for the shop's own staff.",
        auth="admin",
        tag="admin",
        answers={200: SessionDetail, 404: ErrorBody, **_ADMIN_ERRORS},
        parameters=(_SESSION_ID,),
    ),
    Operation(
        "delete",
        "/api/v1/sessions/{session_id}",
        SessionHandler,
        "Erase a session (data protection)",
        "Its messages and record are deleted and its open tabs closed with 4005 on every node.",
        auth="admin",
        tag="admin",
        answers={200: Erased, 404: ErrorBody, **_ADMIN_ERRORS},
        parameters=(_SESSION_ID,),
    ),
    Operation(
        "delete",
        "/api/v1/users/{user_id}/sessions",
        UserSessionsHandler,
        "Erase every session of a customer",
        "For a customer who knows their user id, not their session ids; their open tabs "
        "are closed with 4005.",
        auth="admin",
        tag="admin",
        answers={200: Erased, 404: ErrorBody, **_ADMIN_ERRORS},
        parameters=(
            Parameter(
                "user_id", "path", "The customer's id.", {"type": "string", "maxLength": 128}, True
            ),
        ),
    ),
    Operation(
        "get",
        "/api/v1/export",
        ExportHandler,
        "Every kept session with its messages",
        "Streamed page by page, one JSON object per line: a Transcript per session, then "
        '`{"complete": true, "sessions": N}` (a stream without that line was cut short).',
        auth="admin",
        tag="admin",
        answers={
            200: Lines(ExportLine, "One transcript per line, then the closing count."),
            400: ErrorBody,
            **_ADMIN_ERRORS,
        },
        parameters=(
            Parameter(
                "since",
                "query",
                "Only sessions active since this date or time (ISO 8601; UTC if no zone).",
                {"type": "string"},
            ),
        ),
    ),
    _operator(
        "post",
        "hold",
        HoldHandler,
        "Take a conversation over from the assistant",
        OperatorRequest,
        '{"hold": {...}, "renewed": bool, "grace_seconds": float}',
    ),
    _operator(
        "delete",
        "hold",
        HoldHandler,
        "Give a conversation back to the assistant",
        OperatorRequest,
        '{"released": {...}}; ?force=1 releases whoever holds it',
    ),
    _operator(
        "post",
        "messages",
        MessagesHandler,
        "Say something to the customer",
        OperatorText,
        '{"message": {...}}: the stored message',
        201,
    ),
    _operator(
        "post",
        "notes",
        NotesHandler,
        "Keep an internal note on the conversation",
        OperatorText,
        '{"note": {...}}',
        201,
    ),
    _operator(
        "post",
        "typing",
        TypingHandler,
        "Tell the customer the operator is typing",
        OperatorTyping,
        '{"typing": bool}',
    ),
    _operator(
        "post",
        "read",
        ReadHandler,
        "Mark the customer's messages read up to one",
        OperatorRead,
        '{"read_by_operator": int}',
    ),
    Operation(
        "get",
        "/api/v1/handoffs",
        WaitingHandler,
        "Customers waiting for a person",
        "Conversations that asked for a person and nobody took yet, the longest waiting first.",
        auth="admin",
        tag="operator",
        answers={
            200: ("application/json", '{"waiting": [session, waited_seconds], "timestamp"}'),
            400: ErrorBody,
            **_ADMIN_ERRORS,
        },
        parameters=(
            Parameter(
                "limit",
                "query",
                "At most this many (default 50).",
                {"type": "integer", "minimum": 1, "maximum": 500},
            ),
        ),
    ),
    Operation(
        "get",
        "/metrics",
        MetricsHandler,
        "Prometheus metrics",
        "The Prometheus text format (docs/operations.md lists the metrics). Not here "
        "when the server runs with --metrics-port (there, without a token) or --no-metrics.",
        auth="admin",
        tag="operations",
        answers={200: ("text/plain", "The metrics."), **_ADMIN_ERRORS},
    ),
    Operation(
        "get",
        "/healthz",
        HealthHandler,
        "Liveness: the process serves",
        "`/health` is the same (the original API's name).",
        tag="operations",
        answers={200: Health},
    ),
    Operation(
        "get",
        "/health",
        HealthHandler,
        "Liveness (the original API's name for /healthz)",
        tag="operations",
        answers={200: Health},
    ),
    Operation(
        "get",
        "/readyz",
        ReadyHandler,
        "Readiness: the engine (Redis) is reachable",
        "503 while this node cannot reach its store or bus; take it out of the load balancer then.",
        tag="operations",
        answers={200: Readiness, 503: Readiness},
    ),
    Operation(
        "get",
        "/widget/config",
        WidgetConfigHandler,
        "Whether the asking page may embed the widget",
        "Asked by widget.js with the page's `Origin`; docs/widget.md.",
        tag="widget",
        answers={200: WidgetConfig, 403: ErrorBody},
    ),
)
