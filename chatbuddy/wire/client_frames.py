"""Wire protocol v1, client to server: every frame a chat client may send.

One discriminated union, :data:`ClientMessage`: the single source of truth for
validation, for docs/protocol.md and for the tests. :func:`parse_client_message`
turns a frame into its model, or a fault into the ``error_type`` the protocol
names for it. The server's frames are in :mod:`chatbuddy.wire.server_frames`.
This module does no I/O.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from chatbuddy.errors import ClientError, ErrorType
from chatbuddy.text import ID_PATTERN, MAX_TEXT_CHARS, normalize_text

MAX_CONTENT_CHARS = MAX_TEXT_CHARS
MAX_HISTORY_LIMIT = 200

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
ClientTimestamp = Annotated[str, StringConstraints(max_length=64)]


class _ClientModel(BaseModel):
    # strict: "5" is not a number and 5 is not a string; unknown fields are
    # ignored so that newer clients can talk to older servers.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ChatMessage(_ClientModel):
    """A user's chat text; the server stores it and the agent answers it."""

    type: Literal["chat_message"]
    content: str
    session_id: Identifier
    user_id: Identifier | None = None
    timestamp: ClientTimestamp | None = None
    client_message_id: Identifier | None = None

    @field_validator("content")
    @classmethod
    def _normalized_content(cls, content: str) -> str:
        content = normalize_text(content)
        if not content.strip():
            raise PydanticCustomError("empty_message", "message content is empty")
        if len(content) > MAX_CONTENT_CHARS:
            raise PydanticCustomError(
                "message_too_long",
                "message content is {length} characters; the limit is {limit}",
                {"length": len(content), "limit": MAX_CONTENT_CHARS},
            )
        return content


class Ping(_ClientModel):
    """Keep-alive and round-trip check; answered with ``pong``."""

    type: Literal["ping"]
    timestamp: ClientTimestamp | None = None


class SessionInfoRequest(_ClientModel):
    """Ask for the session's details; answered with ``session_info``."""

    type: Literal["session_info"]


class HistoryRequest(_ClientModel):
    """Ask for stored messages after ``after`` (or the latest ones), oldest first."""

    type: Literal["history"]
    after: int | None = Field(default=None, ge=0)
    limit: int = Field(default=MAX_HISTORY_LIMIT, ge=1, le=MAX_HISTORY_LIMIT)


class Cancel(_ClientModel):
    """Stop a reply: the one being written (``message_id``, the id its chunks carry),
    or the reply to your message ``client_message_id`` (written or still queued)."""

    type: Literal["cancel"]
    message_id: int | None = Field(default=None, ge=1)
    client_message_id: Identifier | None = None

    @model_validator(mode="after")
    def _names_one(self) -> Cancel:
        if (self.message_id is None) == (self.client_message_id is None):
            raise PydanticCustomError(
                "cancel_target", "cancel needs either 'message_id' or 'client_message_id'"
            )
        return self


class Typing(_ClientModel):
    """The customer started or stopped typing (the page throttles it); operators see it."""

    type: Literal["typing"]
    state: Literal["start", "stop"]


class Read(_ClientModel):
    """The page has shown the conversation up to ``message_id``."""

    type: Literal["read"]
    message_id: int = Field(ge=1)


class React(_ClientModel):
    """👍 (``up``) or 👎 (``down``) on an assistant's or operator's reply; null takes it back."""

    type: Literal["reaction"]
    message_id: int = Field(ge=1)
    reaction: Literal["up", "down"] | None


class HandoffRequest(_ClientModel):
    """The customer asks for a person ("Talk to a person")."""

    type: Literal["handoff_request"]


#: Any one client message (a frame parsed).
AnyClientMessage = (
    ChatMessage
    | Ping
    | SessionInfoRequest
    | HistoryRequest
    | Typing
    | Read
    | React
    | HandoffRequest
    | Cancel
)
ClientMessage = Annotated[AnyClientMessage, Field(discriminator="type")]
#: Every client message's ``type``, derived from the union so the two cannot drift.
CLIENT_MESSAGE_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0]  # Literal["x"] -> "x"
    for model in get_args(get_args(ClientMessage)[0])
)
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)

# Pydantic error types that are ours, raised by the validators above.
_CUSTOM_ERROR_TYPES = {ErrorType.EMPTY_MESSAGE.value, ErrorType.MESSAGE_TOO_LONG.value}


def parse_client_message(frame: str | bytes) -> AnyClientMessage:
    """Parse and validate one frame from a client.

    Raises :class:`ClientError` with the ``error_type`` the protocol names for
    what is wrong; its message is short and quotes the offending value.
    """
    if isinstance(frame, bytes):
        raise ClientError(
            ErrorType.UNSUPPORTED_FRAME, "binary frames are not supported; send JSON as text"
        )
    try:
        return _client_adapter.validate_json(frame)
    except ValidationError as exc:
        raise _client_error(exc.errors(include_url=False, include_input=False)[0]) from None


def _client_error(error: ErrorDetails) -> ClientError:
    kind, loc, ctx = error["type"], error["loc"], error.get("ctx") or {}
    if kind == "json_invalid":
        return ClientError(ErrorType.INVALID_JSON, f"invalid JSON: {ctx.get('error', '')}")
    if not loc:
        if kind == "union_tag_not_found":
            return ClientError(ErrorType.MISSING_TYPE, "message has no 'type' field")
        if kind == "union_tag_invalid":
            expected = ", ".join(CLIENT_MESSAGE_TYPES)
            return ClientError(
                ErrorType.UNKNOWN_TYPE,
                f"unknown message type {ctx.get('tag')!r}; expected one of {expected}",
            )
        return ClientError(ErrorType.INVALID_JSON, "a message must be a JSON object")
    request_type, fields = str(loc[0]), ".".join(str(part) for part in loc[1:])
    if kind == "cancel_target":
        return ClientError(ErrorType.VALIDATION_ERROR, error["msg"], request_type=request_type)
    if kind in _CUSTOM_ERROR_TYPES:
        return ClientError(ErrorType(kind), error["msg"], request_type=request_type)
    if kind == "missing" and request_type == "chat_message" and fields == "session_id":
        return ClientError(
            ErrorType.MISSING_SESSION,
            "chat_message needs a 'session_id'",
            request_type=request_type,
        )
    return ClientError(
        ErrorType.VALIDATION_ERROR,
        f"{request_type}.{fields}: {error['msg']}",
        request_type=request_type,
    )
