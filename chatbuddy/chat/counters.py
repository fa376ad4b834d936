"""Counters a server keeps about itself, and the stats document built from them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from chatbuddy.engine import Presence
from chatbuddy.records import utcnow


@dataclass
class Counters:
    """Totals since the process started; only ever incremented."""

    started: float = field(default_factory=time.monotonic)
    connections_opened: int = 0
    messages_received: int = 0
    replies_sent: int = 0
    errors_sent: int = 0
    #: Tokens the agent's model read and wrote, as its replies' metadata report them
    #: (``metadata.usage``: the llm agent's); 0 for agents without a model.
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started


def stats_document(presence: Presence, counters: Counters, engine: str) -> dict[str, Any]:
    """``GET /api/v1/websocket/stats``: the design document's shape plus uptime and counters.

    Connections are counted on every live node (``nodes``); uptime and
    counters are this node's.
    """
    return {
        "websocket_stats": {
            "total_connections": presence.connections,
            "total_sessions": len(presence.sessions),
            "total_users": len(presence.users),
            "sessions": presence.sessions,
            "users": presence.users,
        },
        "nodes": presence.nodes,
        "engine": engine,
        "uptime_seconds": round(counters.uptime, 3),
        "counters": {
            "connections_opened": counters.connections_opened,
            "messages_received": counters.messages_received,
            "replies_sent": counters.replies_sent,
            "errors_sent": counters.errors_sent,
            "prompt_tokens": counters.prompt_tokens,
            "completion_tokens": counters.completion_tokens,
        },
        "timestamp": utcnow().isoformat().replace("+00:00", "Z"),
    }
