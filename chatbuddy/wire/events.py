"""Admin events: what ``/ws/admin/tail`` streams to operators.

Each event is one flat JSON object with a ``type``, the ``session_id`` and a
``timestamp``. Events carry what users wrote: they go only to authenticated
admins and are never logged.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from chatbuddy.records import OmitNone


class _Event(BaseModel):
    type: str
    session_id: str
    timestamp: datetime

    def to_json(self) -> str:
        return self.model_dump_json()


class ConnectionOpenedEvent(_Event):
    type: Literal["connection_opened"] = "connection_opened"
    connection_id: str
    user_id: OmitNone[str] = None
    ip_address: OmitNone[str] = None
    resumed: bool


class ConnectionClosedEvent(_Event):
    type: Literal["connection_closed"] = "connection_closed"
    connection_id: str
    close_code: OmitNone[int] = None
    duration: float


class UserMessageEvent(_Event):
    type: Literal["user_message"] = "user_message"
    message_id: int
    user_id: OmitNone[str] = None
    content: str


class ReplyChunkEvent(_Event):
    type: Literal["reply_chunk"] = "reply_chunk"
    message_id: int
    index: int
    delta: str


class ReplyDoneEvent(_Event):
    type: Literal["reply_done"] = "reply_done"
    message_id: int
    in_reply_to: int
    agent: str
    confidence: float
    processing_time: float
    content: str


class HandoffRequestedEvent(_Event):
    """The assistant's reply asked for a person to take over the conversation."""

    type: Literal["handoff_requested"] = "handoff_requested"
    #: The reply that asked (its id in the session's history); none for the page's button.
    message_id: OmitNone[int] = None
    user_id: OmitNone[str] = None
    #: Why: "customer_asked" (the customer asked the assistant for a person),
    #: "customer_button" (pressed "Talk to a person"), or the agent's own reason.
    reason: str
    #: The conversation's language, for routing to someone who speaks it.
    language: OmitNone[str] = None


class ToolCallEvent(_Event):
    """The assistant ran one of the shop's tools for reply ``message_id``."""

    type: Literal["tool_call"] = "tool_call"
    message_id: int
    tool: str
    #: How long the tool took, in seconds.
    seconds: float
    #: False when the tool refused (a wrong order proof, an unknown product) or failed.
    ok: bool
    #: What the model passed; only to watchers that asked for them (``tail --tool-args``):
    #: they may hold what the customer typed (an e-mail address, a postcode).
    arguments: OmitNone[dict[str, Any]] = None


class OperatorJoinedEvent(_Event):
    """An operator took the conversation over (the assistant is silent meanwhile)."""

    type: Literal["operator_joined"] = "operator_joined"
    operator: str


class OperatorLeftEvent(_Event):
    """The operator gave the conversation back (``released``) or went silent for the
    grace (``timeout``); the assistant answers again."""

    type: Literal["operator_left"] = "operator_left"
    operator: str
    reason: str


class OperatorMessageEvent(_Event):
    """An operator said something to the customer (stored in history)."""

    type: Literal["operator_message"] = "operator_message"
    message_id: int
    operator: str
    content: str


class NoteEvent(_Event):
    """An internal note was added: operators only, never the customer or an agent."""

    type: Literal["note"] = "note"
    operator: str
    content: str


class TypingEvent(_Event):
    """The customer started or stopped typing."""

    type: Literal["typing"] = "typing"
    state: str


class ReadEvent(_Event):
    """The customer's page has shown the conversation up to ``message_id``."""

    type: Literal["read"] = "read"
    message_id: int


class ReactionEvent(_Event):
    """The customer reacted to a reply (``reaction`` None: took it back)."""

    type: Literal["reaction"] = "reaction"
    message_id: int
    reaction: OmitNone[str] = None
    agent: str
    route: OmitNone[str] = None


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    error_type: str
    error_message: str
    request_type: OmitNone[str] = None


_EVENT_MODELS = (
    ConnectionOpenedEvent,
    ConnectionClosedEvent,
    UserMessageEvent,
    ReplyChunkEvent,
    ReplyDoneEvent,
    HandoffRequestedEvent,
    ToolCallEvent,
    OperatorJoinedEvent,
    OperatorLeftEvent,
    OperatorMessageEvent,
    NoteEvent,
    TypingEvent,
    ReadEvent,
    ReactionEvent,
    ErrorEvent,
)
AdminEvent = Annotated[
    ConnectionOpenedEvent
    | ConnectionClosedEvent
    | UserMessageEvent
    | ReplyChunkEvent
    | ReplyDoneEvent
    | HandoffRequestedEvent
    | ToolCallEvent
    | OperatorJoinedEvent
    | OperatorLeftEvent
    | OperatorMessageEvent
    | NoteEvent
    | TypingEvent
    | ReadEvent
    | ReactionEvent
    | ErrorEvent,
    Field(discriminator="type"),
]
event_adapter: TypeAdapter[AdminEvent] = TypeAdapter(AdminEvent)
#: Every event's ``type``, in the order of the union.
EVENT_TYPES = tuple(model.model_fields["type"].default for model in _EVENT_MODELS)


#: How every tool_call event starts (model_dump_json writes ``type`` first): watchers
#: that did not ask for tool arguments get it without them.
TOOL_CALL_PREFIX = '{"type":"tool_call"'


def without_arguments(frame: str) -> str:
    """A tool_call event's JSON with its ``arguments`` left out."""
    data = json.loads(frame)
    data.pop("arguments", None)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def parse_event(frame: str | bytes) -> AdminEvent:
    """Parse an event frame (for the CLI and the tests)."""
    return event_adapter.validate_json(frame)


def event_dict(frame: str | bytes) -> dict[str, Any]:
    """An event as a plain dict, validated."""
    return parse_event(frame).model_dump(mode="json", exclude_none=True)
