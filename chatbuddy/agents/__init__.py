"""Agents that answer chat messages; pick one by name with :func:`make_agent`."""

from __future__ import annotations

from collections.abc import Callable

from chatbuddy.agents.base import Agent, AgentReply, AgentRequest
from chatbuddy.agents.coordinator import CoordinatorAgent
from chatbuddy.agents.echo import EchoAgent
from chatbuddy.agents.shop import Shop
from chatbuddy.errors import ConfigurationError

AGENTS: dict[str, Callable[[], Agent]] = {
    "coordinator": lambda: CoordinatorAgent(Shop.demo()),
    "echo": EchoAgent,
}


def make_agent(name: str) -> Agent:
    """The built-in agent called ``name``."""
    try:
        factory = AGENTS[name]
    except KeyError:
        known = ", ".join(sorted(AGENTS))
        raise ConfigurationError(f"unknown agent {name!r}; choose one of {known}") from None
    return factory()


__all__ = ["AGENTS", "Agent", "AgentReply", "AgentRequest", "make_agent"]
