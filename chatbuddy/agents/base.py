"""The agent interface: how a reply is produced.

An agent decides who answers (the sub-agent) and how sure it is, then streams
the text. The chat logic forwards each chunk as it comes and stores the whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class AgentRequest:
    """What an agent is asked to answer."""

    session_id: str
    user_id: str | None
    content: str


@dataclass
class AgentReply:
    """A reply being produced: who answers, how sure, and the text as a stream."""

    #: The sub-agent that answers (product, order, ... or the agent's own name).
    agent: str
    #: How well the message was understood, 0..1.
    confidence: float
    #: The text, chunk by chunk; iterating it produces the reply.
    chunks: AsyncIterator[str]
    #: JSON-safe extras that go into the reply's metadata.
    metadata: dict[str, Any] = field(default_factory=dict)


class Agent(Protocol):
    """Anything that can answer a chat message."""

    @property
    def name(self) -> str: ...

    async def respond(self, request: AgentRequest) -> AgentReply:
        """Start a reply; raising here or while streaming is an agent error."""


async def stream_text(chunks: Iterable[str]) -> AsyncIterator[str]:
    """Turn ready-made text pieces into a chunk stream."""
    for chunk in chunks:
        yield chunk
