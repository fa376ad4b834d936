"""The WebSocket protocol as an AsyncAPI 3.0 document, made from the wire models.

Served as ``/asyncapi.json``. Every message's payload schema is generated from
the pydantic model that validates it (:mod:`chatbuddy.wire.client_frames` and
:mod:`chatbuddy.wire.server_frames` for the chat socket,
:mod:`chatbuddy.wire.events` for the admin tail), so the models,
docs/protocol.md (whose examples are checked against both) and this document
cannot drift apart. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chatbuddy.wire.client_frames import ClientMessage
from chatbuddy.wire.close_codes import Close
from chatbuddy.wire.events import AdminEvent
from chatbuddy.wire.server_frames import PROTOCOL_VERSION, ServerMessage
from chatbuddy.wire.subprotocol import SUBPROTOCOL, TOKEN_PREFIX

_SCHEMAS = "#/components/schemas/{model}"


def client_models() -> tuple[type[BaseModel], ...]:
    """The models of every frame a client sends, in the union's order."""
    return tuple(get_args(get_args(ClientMessage)[0]))


def server_models() -> tuple[type[BaseModel], ...]:
    """The models of every frame the server sends, in the union's order."""
    return tuple(get_args(get_args(ServerMessage)[0]))


def event_models() -> tuple[type[BaseModel], ...]:
    """The models of every admin event."""
    return tuple(get_args(get_args(AdminEvent)[0]))


def wire_type(model: type[BaseModel]) -> str:
    """The ``type`` a model's frames carry."""
    field = model.model_fields["type"]
    return str(get_args(field.annotation)[0] if field.is_required() else field.default)


def document(version: str) -> dict[str, Any]:
    """The AsyncAPI document of this server (``version``: the package's)."""
    chat_in, chat_out, events = client_models(), server_models(), event_models()
    # What a client may send is what validates; what the server sends is how it serializes.
    _, definitions = models_json_schema(
        [
            *[(model, "validation") for model in chat_in],
            *[(model, "serialization") for model in (*chat_out, *events)],
        ],
        ref_template=_SCHEMAS,
    )
    messages = {
        **{_key("chat", m): _message(m, "A client sends it.") for m in chat_in},
        **{_key("chat", m): _message(m, "The server sends it.") for m in chat_out},
        **{_key("admin", m): _message(m, "An admin event.") for m in events},
    }
    closes = ", ".join(f"{int(code)} {code.name.lower()}" for code in Close)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ChatBuddy WebSocket protocol",
            "version": f"{PROTOCOL_VERSION}.0.0",
            "description": (
                f"The chat socket, protocol version {PROTOCOL_VERSION}, and the admin tail "
                f"(ChatBuddy {version}). Every frame is one JSON object in a text frame. "
                "docs/protocol.md explains each message with an example; this document "
                "is generated from the same models. Close codes: " + closes + "."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "chat": {
                "address": "/ws/chat/{session_id}",
                "title": "A chat session",
                "description": (
                    f"Offer the subprotocol {SUBPROTOCOL!r}, and {TOKEN_PREFIX!r} + the "
                    "session token to reconnect to a session that exists. `user_id` may be "
                    "given in the query."
                ),
                "parameters": {"session_id": {"description": "1-128 of A-Z a-z 0-9 _ . : -"}},
                "messages": {
                    _key("chat", m): {"$ref": f"#/components/messages/{_key('chat', m)}"}
                    for m in (*chat_in, *chat_out)
                },
                "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
            },
            "adminTail": {
                "address": "/ws/admin/tail",
                "title": "Admin events",
                "description": (
                    "What happens on every node, as it happens (the admin token as "
                    "`Authorization: Bearer`, or `?token=`; `?session=ID` for one session)."
                ),
                "messages": {
                    _key("admin", m): {"$ref": f"#/components/messages/{_key('admin', m)}"}
                    for m in events
                },
            },
        },
        "operations": {
            **{f"send_{wire_type(m)}": _operation("send", "chat", m) for m in chat_in},
            "receive_chat_frames": {
                "action": "receive",
                "channel": {"$ref": "#/channels/chat"},
                "summary": "What the server sends on a chat socket.",
                "messages": [
                    {"$ref": f"#/channels/chat/messages/{_key('chat', m)}"} for m in chat_out
                ],
            },
            "receive_admin_events": {
                "action": "receive",
                "channel": {"$ref": "#/channels/adminTail"},
                "summary": "Admin events, one per frame.",
                "messages": [
                    {"$ref": f"#/channels/adminTail/messages/{_key('admin', m)}"} for m in events
                ],
            },
        },
        "components": {"messages": messages, "schemas": definitions["$defs"]},
    }


def _key(channel: str, model: type[BaseModel]) -> str:
    """A message's key: its model's name (a client's and the server's ``history`` differ)."""
    return model.__name__


def _message(model: type[BaseModel], who: str) -> dict[str, Any]:
    summary = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
    return {
        "name": wire_type(model),
        "title": model.__name__,
        "summary": f"{who} {summary}".strip(),
        "payload": {"$ref": _SCHEMAS.format(model=model.__name__)},
    }


def _operation(action: str, channel: str, model: type[BaseModel]) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": _message(model, "").get("summary", ""),
        "messages": [{"$ref": f"#/channels/{channel}/messages/{_key(channel, model)}"}],
    }
