"""Plug-ins named as package.module:factory in tests (an agent, an order backend)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

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


class GatedAgent:
    """Answers "re: TEXT" at once, except a message that starts with "hold": that
    reply is still being written until the process gets SIGUSR1, as a slow
    agent's would be while a test stops the server. The file ``held`` appears
    once such a message waits (the server has stored it by then)."""

    name = "gated"
    history_wanted = 0

    def __init__(self, held: Path) -> None:
        # Touched when a reply starts waiting, for the test to see.
        self.held = held
        # Set by SIGUSR1: held replies go on.
        self.released = asyncio.Event()

    async def respond(self, request: AgentRequest) -> AgentReply:
        if request.content.startswith("hold"):
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.released.set)
            self.held.touch()
            await self.released.wait()
        return AgentReply(agent="gated", confidence=1.0, text="re: " + request.content)


def make_gated_agent() -> GatedAgent:
    """The gated agent; CHATBUDDY_TEST_HELD names the file it touches."""
    return GatedAgent(Path(os.environ["CHATBUDDY_TEST_HELD"]))
