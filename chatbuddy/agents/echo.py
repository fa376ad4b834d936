"""The echo agent: replies with what it was sent (tests, benchmarks)."""

from __future__ import annotations

from chatbuddy.agents.base import AgentReply, AgentRequest


class EchoAgent:
    """Echoes the message back, whole: pure server overhead, no thinking, no streaming."""

    name = "echo"
    #: An echo needs no conversation.
    history_wanted = 0
    #: Nothing to wait for (see Agent).
    answers_at_once = True

    async def respond(self, request: AgentRequest) -> AgentReply:
        return AgentReply(agent="echo", confidence=1.0, text=request.content)
