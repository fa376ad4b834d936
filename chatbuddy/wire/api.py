"""The HTTP API's bodies as pydantic models: the source of ``/openapi.json``.

Every JSON body an HTTP endpoint takes or gives has a model here, and
``tests/test_api_docs.py`` checks each live answer of a real server against
its model (unknown fields are errors), so the published schema and the
handlers cannot drift apart. This module does no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from chatbuddy.records import ClientInfo, StoredMessage
from chatbuddy.text import ID_PATTERN

#: An id the server checks (as the WebSocket handshake does: 400 invalid_identifier).
CheckedId = Annotated[
    str,
    Field(
        max_length=1024,
        json_schema_extra={"pattern": ID_PATTERN},
        examples=["session_123"],
    ),
]


class _Body(BaseModel):
    # Answers are checked strictly against these models in the tests.
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Body):
    type: str = Field(description="What went wrong, as a word: not_found, rate_limited, ...")
    message: str = Field(description="One English sentence that names the bad value.")


class ErrorBody(_Body):
    """Every error answer of every endpoint."""

    error: ErrorDetail


class Health(_Body):
    """The process serves."""

    status: Literal["ok"]


class Readiness(_Body):
    """Whether this node can serve chats now: its engine (Redis) is reachable."""

    status: Literal["ready", "not ready"]
    engine: str


class WebsocketStats(_Body):
    total_connections: int
    total_sessions: int
    total_users: int
    sessions: dict[str, int] = Field(description="Connections per session.")
    users: dict[str, int] = Field(description="Connections per user (anonymous ones not).")


class StatsCounters(_Body):
    connections_opened: int
    messages_received: int
    replies_sent: int
    errors_sent: int
    prompt_tokens: int = Field(description="Model tokens of this node's replies' prompts (llm).")
    completion_tokens: int = Field(description="Model tokens this node's replies were written in.")


class ReactionTally(_Body):
    """Customers' reactions to the replies of one agent and route."""

    agent: str
    route: str
    up: int
    down: int
    up_share: float = Field(description="The share of thumbs up, 0 to 1.")


class Stats(_Body):
    """Who is connected on every node, and this node's uptime and totals."""

    websocket_stats: WebsocketStats
    nodes: int = Field(description="Live nodes counted (1 with the memory engine).")
    engine: str
    uptime_seconds: float
    counters: StatsCounters
    timestamp: datetime
    reactions: list[ReactionTally]


class HoldSummary(_Body):
    """Who took a conversation over from the assistant, since and until when."""

    operator: str
    since: datetime
    until: datetime


class NoteSummary(_Body):
    """An operator's internal note on a session (never shown to the customer)."""

    operator: str
    content: str
    timestamp: datetime


class StoredSession(_Body):
    """A session as it is kept (never its token)."""

    session_id: str
    user_id: str | None
    client_info: ClientInfo
    created_at: datetime
    connected_at: datetime
    last_activity: datetime
    message_count: int
    last_message_id: int | None
    hold: HoldSummary | None = Field(description="The operator holding it, if one does.")
    waiting_since: datetime | None = Field(description="Since when it waits for a person.")
    read_by_customer: int = Field(description="The last message id the customer has seen.")
    read_by_operator: int = Field(description="The last message id the operator has seen.")


class SessionSummary(StoredSession):
    """A session as the admin API shows it (never its token)."""

    connections: int = Field(description="Its open connections on every node.")


class SessionsPage(_Body):
    """Sessions, newest activity first."""

    sessions: list[SessionSummary]
    total: int
    offset: int
    limit: int


class SessionDetail(_Body):
    """One session with its whole stored history."""

    session: SessionSummary
    messages: list[StoredMessage]
    notes: list[NoteSummary]


class Erased(_Body):
    """What an erasure removed; the sessions' open tabs were closed with ``close_code``."""

    erased: list[str] = Field(description="The ids of the sessions erased.")
    close_code: int = Field(description="The close code their open tabs got (4005).")


class Transcript(_Body):
    """One line of an export: a session and every message of it."""

    session: StoredSession
    messages: list[StoredMessage]
    notes: list[NoteSummary] | None = None


class ExportEnd(_Body):
    """The last line of an export; a stream without it was cut short."""

    complete: Literal[True]
    sessions: int = Field(description="Transcripts in the export.")


class ExportLine(RootModel[Transcript | ExportEnd]):
    """One line of ``GET /api/v1/export``: a transcript, or the closing count."""


class WidgetConfig(_Body):
    """Where the widget's frame is, for a page whose origin is allowed."""

    frame: str


class ChatRequest(BaseModel):
    """``POST /api/v1/chat``: one message in (the original API's shape)."""

    model_config = ConfigDict(extra="ignore")

    session_id: CheckedId
    message: str = Field(
        description="The text, as in a chat_message's content (1-4000 characters).",
        examples=["Mennyi az ára a Samsung Galaxy S24-nek?"],
    )
    user_id: CheckedId | None = None
    context: dict[str, Any] | None = Field(
        default=None,
        description="Accepted for the original API's clients and not used: the assistant "
        "keeps the conversation's context itself.",
    )
    client_message_id: CheckedId | None = Field(
        default=None,
        description="Your id for the message: sent again after a failure, it is stored "
        "and answered once.",
    )


class ChatReply(_Body):
    """``POST /api/v1/chat``: the reply out (the original API's shape)."""

    session_id: str
    message: str = Field(description="The whole reply.")
    agent_used: str = Field(description="The sub-agent that answered: product, order, ...")
    confidence: float = Field(ge=0.0, le=1.0)
    metadata: dict[str, Any] = Field(
        description="The reply's metadata as in chat_response, and its message_id, "
        "in_reply_to and agent_type."
    )
    timestamp: datetime


class OperatorRequest(BaseModel):
    """An operator's request: who they are (a display name; the token is the proof)."""

    operator: str | None = Field(
        default=None,
        description="The operator's name, shown to the customer. A token of the tokens "
        "file acts under its own name: leave this out or give that name (any other is "
        "refused with 403). The server's own admin token must name the operator.",
    )


class OperatorText(OperatorRequest):
    """What an operator says to the customer, or notes for colleagues."""

    content: str


class OperatorTyping(OperatorRequest):
    """Whether the holding operator is typing."""

    typing: bool


class OperatorRead(OperatorRequest):
    """The last message the holding operator has seen."""

    message_id: int = Field(ge=1)
