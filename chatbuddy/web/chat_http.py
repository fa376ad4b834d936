"""``POST /api/v1/chat``: one message in, its reply out, for clients that cannot keep a socket.

The original API's shapes (:class:`chatbuddy.wire.api.ChatRequest` and
``ChatReply``), the chat socket's rules: the request is admitted to its session
as a handshake is (a session that exists needs its token, sent in
``X-Session-Token``; a new one is given its token in the same header of the
answer), and its message is a ``chat_message`` frame for the chat service, so
the same limits, queue, agent and store answer it, and the session's open tabs
see the message and the reply as they would a tab's. docs/migrating.md.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from pydantic import ValidationError

from chatbuddy.audit import AuditLog
from chatbuddy.chat import ChatService, HandshakeRequest
from chatbuddy.chat.sessions import check_ids
from chatbuddy.errors import ClientError, ErrorType, HandshakeRejected, StorageUnavailable
from chatbuddy.metrics import SocketMetrics
from chatbuddy.records import ClientInfo
from chatbuddy.text import is_valid_id
from chatbuddy.web.http import JsonHandler, json_error
from chatbuddy.wire.api import ChatReply, ChatRequest
from chatbuddy.wire.client_frames import parse_client_message

#: The header that carries a session's token, both ways.
TOKEN_HEADER = "X-Session-Token"  # noqa: S105 (a header's name, not a secret)

#: The HTTP status of each error a chat message can get (400 for the rest).
STATUS = {
    ErrorType.RATE_LIMITED: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorType.DUPLICATE_MESSAGE: HTTPStatus.CONFLICT,
    ErrorType.MISSING_SESSION: HTTPStatus.GONE,
    ErrorType.STORAGE_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.SHUTTING_DOWN: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.AGENT_ERROR: HTTPStatus.BAD_GATEWAY,
    ErrorType.INTERNAL_ERROR: HTTPStatus.INTERNAL_SERVER_ERROR,
}


class ChatOverHttpHandler(JsonHandler):
    """``POST /api/v1/chat``."""

    def initialize(self, service: ChatService, audit: AuditLog, metrics: SocketMetrics) -> None:
        # Admits the request to its session and answers its message.
        self._service = service
        # Records refusals (never the text or the token).
        self._audit = audit
        # Counts refusals as the chat socket's are counted.
        self._metrics = metrics

    async def post(self) -> None:
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            json_error(self, 415, "unsupported_media_type", "send the request as application/json")
            return
        try:
            body = ChatRequest.model_validate_json(self.request.body)
        except ValidationError as exc:
            error = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in error["loc"])
            kind = "invalid_json" if error["type"] == "json_invalid" else "validation_error"
            json_error(self, 400, kind, f"{where}: {error['msg']}" if where else error["msg"])
            return
        frame = _frame(body)
        try:  # a request no socket could make opens no session either
            check_ids(body.session_id, body.user_id)
            parse_client_message(frame)
        except HandshakeRejected as rejected:
            self._refuse(body.session_id, rejected.status, rejected.reason, rejected.message)
            return
        except ClientError as error:
            json_error(self, 400, error.error_type, error.message)
            return
        headers = self.request.headers
        request = HandshakeRequest(
            session_id=body.session_id,
            user_id=body.user_id,
            session_token=headers.get(TOKEN_HEADER) or None,
            client_info=ClientInfo(
                ip_address=self.request.remote_ip,
                user_agent=_clip(headers.get("User-Agent"), 512),
                accept_language=_clip(headers.get("Accept-Language"), 256),
            ),
        )
        try:
            grant = await self._service.admit_request(request)
        except HandshakeRejected as rejected:
            self._refuse(body.session_id, rejected.status, rejected.reason, rejected.message)
            return
        except StorageUnavailable:
            self._refuse(
                body.session_id, 503, "storage_unavailable", "sessions are unavailable; retry"
            )
            return
        # From here on the session is the caller's: every answer says how to come back.
        self.set_header(TOKEN_HEADER, grant.session_token)
        try:
            reply = await self._service.ask(grant, frame, ip=self.request.remote_ip)
        except ClientError as error:
            status = STATUS.get(error.error_type, HTTPStatus.BAD_REQUEST)
            if status == HTTPStatus.TOO_MANY_REQUESTS:
                self.set_header("Retry-After", "1")
            json_error(self, status, error.error_type, error.message)
            return
        metadata = {
            **(reply.metadata or {}),
            "message_id": reply.id,
            "in_reply_to": reply.in_reply_to,
            "agent_type": self._service.agent_name,
        }
        answer = ChatReply(
            session_id=grant.session.session_id,
            message=reply.content,
            agent_used=reply.agent or self._service.agent_name,
            confidence=reply.confidence if reply.confidence is not None else 0.0,
            metadata=metadata,
            timestamp=reply.timestamp,
        )
        self.write_json(answer.model_dump(mode="json"))

    def _refuse(self, session_id: str, status: int, reason: str, message: str) -> None:
        self._audit.record(
            "handshake_refused",
            session_id=session_id if is_valid_id(session_id) else None,
            ip=self.request.remote_ip,
            status=status,
            reason=reason,
        )
        self._metrics.handshake_refused(reason)
        json_error(self, status, reason, message)


def _frame(body: ChatRequest) -> str:
    """The request's message as the ``chat_message`` frame a socket would send."""
    frame = {"type": "chat_message", "session_id": body.session_id, "content": body.message}
    if body.user_id is not None:
        frame["user_id"] = body.user_id
    if body.client_message_id is not None:
        frame["client_message_id"] = body.client_message_id
    return json.dumps(frame)


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]
