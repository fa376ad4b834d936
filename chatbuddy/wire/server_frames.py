"""Wire protocol v1, server to client: every frame the server sends.

One discriminated union, :data:`ServerMessage`: the single source of truth for
docs/protocol.md, /asyncapi.json and the tests, and the envelope writer that
sends frames without building a model per frame. The client's frames are in
:mod:`chatbuddy.wire.client_frames`. This module does no I/O.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, TypeAdapter

from chatbuddy.errors import ErrorType
from chatbuddy.records import ClientInfo, OmitNone, StoredMessage
from chatbuddy.text import is_valid_id

PROTOCOL_VERSION = 1


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
