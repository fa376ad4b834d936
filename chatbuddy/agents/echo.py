"""The echo agent: replies with what it was sent (tests, benchmarks)."""

from __future__ import annotations

from chatbuddy.agents.base import AgentReply, AgentRequest, stream_text


class EchoAgent:
    """Echoes the message back in one chunk: pure server overhead, no thinking."""

    name = "echo"

    async def respond(self, request: AgentRequest) -> AgentReply:
        return AgentReply(agent="echo", confidence=1.0, chunks=stream_text([request.content]))
