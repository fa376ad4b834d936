"""A ``cancel`` on its way to the node that writes the reply: the control message.

A tab on one node may stop a reply another node writes (the message was sent
from a tab there). The service publishes the stop to every node
(:meth:`chatbuddy.chat.node.LocalNode.to_every_node`); each node's reply
pipeline checks whether the reply, or the queued message, is its own.
"""

from __future__ import annotations

import json

from chatbuddy.chat.rules import StopReply

_KIND = "stop"


def encode(stop: StopReply) -> str:
    """The control message for ``stop`` (opaque text to the bus)."""
    return json.dumps(
        {
            "kind": _KIND,
            "incarnation": stop.incarnation,
            "message_id": stop.message_id,
            "client_message_id": stop.client_message_id,
        },
        separators=(",", ":"),
    )


def decode(session_id: str, message: str) -> StopReply | None:
    """The stop in a control message about ``session_id``; None for anything else
    (another kind of control message, or one that is not well formed)."""
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("kind") != _KIND:
        return None
    incarnation = data.get("incarnation")
    message_id = data.get("message_id")
    client_message_id = data.get("client_message_id")
    if not isinstance(incarnation, str):
        return None
    if message_id is not None and (isinstance(message_id, bool) or not isinstance(message_id, int)):
        return None
    if client_message_id is not None and not isinstance(client_message_id, str):
        return None
    return StopReply(session_id, incarnation, message_id, client_message_id)
