"""Agents that answer chat messages; pick one by name with :func:`make_agent`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chatbuddy.agents.base import (
    Agent,
    AgentReply,
    AgentRequest,
    Progress,
    ToolFinished,
    ToolStarted,
)
from chatbuddy.agents.coordinator import CoordinatorAgent
from chatbuddy.agents.echo import EchoAgent
from chatbuddy.agents.loading import is_factory_spec, load_factory
from chatbuddy.agents.shop import FileOrders, OrderBackend, Shop
from chatbuddy.errors import ConfigurationError
from chatbuddy.settings import Settings

AGENTS: dict[str, Callable[[Shop, OrderBackend], Agent]] = {
    "coordinator": lambda shop, orders: CoordinatorAgent(shop, orders),
    "echo": lambda shop, orders: EchoAgent(),
}


def _llm(shop: Shop, orders: OrderBackend, settings: Settings) -> Agent:
    from chatbuddy.agents.llm import llm_agent  # only llm deployments load the SDK

    return llm_agent(shop, orders, settings)


#: Agents that are configured by the server's settings (an endpoint, a model, limits).
CONFIGURED_AGENTS: dict[str, Callable[[Shop, OrderBackend, Settings], Agent]] = {"llm": _llm}


def agent_names() -> list[str]:
    """Every built-in agent's name."""
    return sorted({*AGENTS, *CONFIGURED_AGENTS})


def make_agent(
    name: str,
    *,
    shop: Path | None = None,
    order_backend: str | None = None,
    settings: Settings | None = None,
) -> Agent:
    """The agent called ``name`` (built in, or ``package.module:factory``), answering from
    the shop file at ``shop`` (the demo shop when None) with orders from ``order_backend``
    (``package.module:factory``; the shop file's orders when None). ``settings``
    configure the agents that need them (``llm``); defaults when None.

    Raises ConfigurationError (one line) for an unknown name, a bad shop file or plug-in,
    or settings an agent cannot work with.
    """
    if is_factory_spec(name):
        agent = load_factory(name, "agent")()
        for needed in ("name", "history_wanted", "respond"):
            if not hasattr(agent, needed):
                raise ConfigurationError(f"agent {name!r} made an object without {needed!r}")
        return agent  # type: ignore[no-any-return]
    if name not in AGENTS and name not in CONFIGURED_AGENTS:
        known = ", ".join(agent_names())
        raise ConfigurationError(
            f"unknown agent {name!r}; choose one of {known}, or package.module:factory"
        )
    catalogue = Shop.load(shop) if shop is not None else Shop.demo()
    orders: OrderBackend = FileOrders(catalogue.orders)
    if order_backend is not None:
        orders = load_factory(order_backend, "order backend")()
        if not callable(getattr(orders, "find", None)):
            raise ConfigurationError(
                f"order backend {order_backend!r} made an object without find()"
            )
    if name in CONFIGURED_AGENTS:
        return CONFIGURED_AGENTS[name](catalogue, orders, settings or Settings())
    return AGENTS[name](catalogue, orders)


__all__ = [
    "AGENTS",
    "CONFIGURED_AGENTS",
    "Agent",
    "AgentReply",
    "AgentRequest",
    "Progress",
    "ToolFinished",
    "ToolStarted",
    "agent_names",
    "make_agent",
]
