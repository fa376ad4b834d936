"""Wire protocol v1: every frame that crosses the chat WebSocket.

One discriminated union per direction (:data:`ClientMessage`,
:data:`ServerMessage`). These models are the single source of truth for
validation, for docs/protocol.md and for the tests. This module does no I/O.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

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
from chatbuddy.records import ClientInfo, OmitNone, StoredMessage
from chatbuddy.text import ID_PATTERN, MAX_TEXT_CHARS, is_valid_id, normalize_text

PROTOCOL_VERSION = 1
MAX_CONTENT_CHARS = MAX_TEXT_CHARS
MAX_HISTORY_LIMIT = 200

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
ClientTimestamp = Annotated[str, StringConstraints(max_length=64)]


# --------------------------------------------------------------------------
# Client -> server
# --------------------------------------------------------------------------


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


ClientMessage = Annotated[
    ChatMessage
    | Ping
    | SessionInfoRequest
    | HistoryRequest
    | Typing
    | Read
    | React
    | HandoffRequest
    | Cancel,
    Field(discriminator="type"),
]
#: Every client message's ``type``, derived from the union so the two cannot drift.
CLIENT_MESSAGE_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0]  # Literal["x"] -> "x"
    for model in get_args(get_args(ClientMessage)[0])
)
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)

# Pydantic error types that are ours, raised by the validators above.
_CUSTOM_ERROR_TYPES = {ErrorType.EMPTY_MESSAGE.value, ErrorType.MESSAGE_TOO_LONG.value}


def parse_client_message(
    frame: str | bytes,
) -> (
    ChatMessage
    | Ping
    | SessionInfoRequest
    | HistoryRequest
    | Typing
    | Read
    | React
    | HandoffRequest
    | Cancel
):
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


# --------------------------------------------------------------------------
# Server -> client
# --------------------------------------------------------------------------


class ConnectionEstablishedData(BaseModel):
    connection_id: str
    session_id: str
    user_id: str | None
    timestamp: datetime
    session_token: str
    resumed: bool
    last_message_id: int | None
    protocol_version: int = PROTOCOL_VERSION


class ChatResponseChunkData(BaseModel):
    message_id: int
    delta: str
    index: int


class ChatResponseData(BaseModel):
    message_id: int
    content: str
    agent_type: str = "coordinator"
    confidence: float = Field(ge=0.0, le=1.0)
    timestamp: datetime
    metadata: dict[str, Any]
    in_reply_to: int
    #: True when the reply was stopped (``cancel``): ``content`` is what was written so far.
    cancelled: OmitNone[bool] = None


class ReplyStatusData(BaseModel):
    """What the assistant is doing for reply ``message_id`` before (or between) its text."""

    message_id: int
    in_reply_to: int
    #: "tool": running one of the shop's tools (``tool`` names it).
    activity: Literal["tool"]
    tool: OmitNone[str] = None


class PongData(BaseModel):
    timestamp: datetime
    client_timestamp: OmitNone[str] = None


class SessionInfoData(BaseModel):
    session_id: str
    user_id: str | None
    created_at: datetime
    connected_at: datetime
    last_activity: datetime
    message_count: int
    client_info: ClientInfo
    connections: int


class HistoryData(BaseModel):
    messages: list[StoredMessage]
    has_more: bool
    last_message_id: int | None


class ErrorData(BaseModel):
    error_type: ErrorType
    error_message: str
    timestamp: datetime
    request_type: OmitNone[str] = None
    in_reply_to: OmitNone[int] = None
    #: For a failed reply (``agent_error``, ``busy``): whether sending it again may help.
    retryable: OmitNone[bool] = None
    client_message_id: OmitNone[str] = None


class OperatorJoinedData(BaseModel):
    """A person took the conversation over: the assistant is silent until they leave."""

    operator: str
    since: datetime


class OperatorLeftData(BaseModel):
    """The person left: ``released`` (gave it back) or ``timeout`` (gone silent for
    ``--operator-grace``); the assistant answers again."""

    operator: str
    reason: Literal["released", "timeout"]


class TypingData(BaseModel):
    """Someone other than the assistant is typing: the operator (with their name)."""

    who: Literal["operator"]
    name: str
    state: Literal["start", "stop"]


class ReadData(BaseModel):
    """``reader`` has seen the conversation up to ``message_id``."""

    reader: Literal["customer", "operator"]
    message_id: int
    name: OmitNone[str] = None


class ReactionData(BaseModel):
    """The customer's reaction to a reply, set in another tab (null: taken back)."""

    message_id: int
    reaction: Literal["up", "down"] | None


class HandoffPendingData(BaseModel):
    """The customer waits for a person since ``waiting_since``; the assistant answers meanwhile."""

    waiting_since: datetime


DataT = TypeVar("DataT", bound=BaseModel)


class Envelope(BaseModel, Generic[DataT]):
    """What every server frame looks like: ``{"type", "data", "session_id", "timestamp"}``."""

    type: str
    data: DataT
    session_id: str | None = None
    timestamp: datetime

    def to_json(self) -> str:
        """The frame as sent: compact JSON (the same as ``model_dump_json()``)."""
        return envelope(self.type, self.data, self.session_id, self.timestamp)


def envelope(kind: str, data: BaseModel, session_id: str | None, timestamp: datetime) -> str:
    """Serialize a server frame without building its Envelope model.

    Equal to ``Envelope.model_dump_json()`` (tests/test_protocol.py checks it);
    on the hot path this saves a model construction per frame.
    """
    head, tail = envelope_parts(kind, session_id, timestamp)
    return head + data.model_dump_json() + tail


def envelope_parts(kind: str, session_id: str | None, timestamp: datetime) -> tuple[str, str]:
    """What goes before and after the data of a server frame."""
    if session_id is None:
        sid = "null"
    elif is_valid_id(session_id):  # ids of that pattern need no escaping inside quotes
        sid = f'"{session_id}"'
    else:
        sid = json.dumps(session_id)
    return (
        f'{{"type":"{kind}","data":',
        f',"session_id":{sid},"timestamp":"{iso_time(timestamp)}"}}',
    )


def iso_time(moment: datetime) -> str:
    """A UTC time as pydantic writes it: ``2024-01-15T10:30:00.123456Z``."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ConnectionEstablished(Envelope[ConnectionEstablishedData]):
    type: Literal["connection_established"] = "connection_established"


class ChatResponseChunk(Envelope[ChatResponseChunkData]):
    type: Literal["chat_response_chunk"] = "chat_response_chunk"


class ChatResponse(Envelope[ChatResponseData]):
    type: Literal["chat_response"] = "chat_response"


class UserMessage(Envelope[StoredMessage]):
    type: Literal["user_message"] = "user_message"


class Pong(Envelope[PongData]):
    type: Literal["pong"] = "pong"


class SessionInfo(Envelope[SessionInfoData]):
    type: Literal["session_info"] = "session_info"


class History(Envelope[HistoryData]):
    type: Literal["history"] = "history"


class Error(Envelope[ErrorData]):
    type: Literal["error"] = "error"


class ReplyStatus(Envelope[ReplyStatusData]):
    type: Literal["reply_status"] = "reply_status"


class OperatorJoined(Envelope[OperatorJoinedData]):
    type: Literal["operator_joined"] = "operator_joined"


class OperatorLeft(Envelope[OperatorLeftData]):
    type: Literal["operator_left"] = "operator_left"


class OperatorMessage(Envelope[StoredMessage]):
    type: Literal["operator_message"] = "operator_message"


class TypingNotice(Envelope[TypingData]):
    type: Literal["typing"] = "typing"


class ReadNotice(Envelope[ReadData]):
    type: Literal["read"] = "read"


class ReactionNotice(Envelope[ReactionData]):
    type: Literal["reaction"] = "reaction"


class HandoffPending(Envelope[HandoffPendingData]):
    type: Literal["handoff_pending"] = "handoff_pending"


ServerMessage = Annotated[
    ConnectionEstablished
    | ChatResponseChunk
    | ChatResponse
    | UserMessage
    | Pong
    | SessionInfo
    | History
    | Error
    | ReplyStatus
    | OperatorJoined
    | OperatorLeft
    | OperatorMessage
    | TypingNotice
    | ReadNotice
    | ReactionNotice
    | HandoffPending,
    Field(discriminator="type"),
]
server_message_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def parse_server_message(frame: str | bytes) -> ServerMessage:
    """Parse a frame the server sent (for clients: the CLI and the tests)."""
    return server_message_adapter.validate_json(frame)
