"""Plug-ins named as package.module:factory in tests (an agent, an order backend)."""

from __future__ import annotations

from chatbuddy.agents import AgentReply, AgentRequest
from chatbuddy.agents.shop import Order

#: The orders the plugged-in backend knows: one, not in the demo shop file.
REMOTE_ORDER = Order(
    id="77001",
    status="shipped",
    items=("p26",),
    total=219990,
    placed="2026-11-22",
    carrier="DPD",
    tracking="DPD-0000-7700",
    eta="2026-11-28",
    email="remote@example.com",
    postcode="1051",
)


class PluggedInAgent:
    name = "plugged-in"
    history_wanted = 0

    async def respond(self, request: AgentRequest) -> AgentReply:
        return AgentReply(agent="plugged-in", confidence=1.0, text="plugged in")


def make_agent() -> PluggedInAgent:
    return PluggedInAgent()


class RemoteOrders:
    """An order backend as a shop would plug in its own (here: one order in memory)."""

    async def find(self, number: str) -> Order | None:
        return REMOTE_ORDER if number == REMOTE_ORDER.id else None


def make_orders() -> RemoteOrders:
    return RemoteOrders()
