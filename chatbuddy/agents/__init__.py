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

AGENTS: dict[str, Callable[[Shop, OrderBackend], Agent]] = {
    "coordinator": lambda shop, orders: CoordinatorAgent(shop, orders),
    "echo": lambda shop, orders: EchoAgent(),
}


def make_agent(name: str, *, shop: Path | None = None, order_backend: str | None = None) -> Agent:
    """The agent called ``name`` (built in, or ``package.module:factory``), answering from
    the shop file at ``shop`` (the demo shop when None) with orders from ``order_backend``
    (``package.module:factory``; the shop file's orders when None).

    Raises ConfigurationError (one line) for an unknown name, a bad shop file or plug-in.
    """
    if is_factory_spec(name):
        agent = load_factory(name, "agent")()
        for needed in ("name", "history_wanted", "respond"):
            if not hasattr(agent, needed):
                raise ConfigurationError(f"agent {name!r} made an object without {needed!r}")
        return agent  # type: ignore[no-any-return]
    try:
        factory = AGENTS[name]
    except KeyError:
        known = ", ".join(sorted(AGENTS))
        raise ConfigurationError(
            f"unknown agent {name!r}; choose one of {known}, or package.module:factory"
        ) from None
    catalogue = Shop.load(shop) if shop is not None else Shop.demo()
    orders: OrderBackend = FileOrders(catalogue.orders)
    if order_backend is not None:
        orders = load_factory(order_backend, "order backend")()
        if not callable(getattr(orders, "find", None)):
            raise ConfigurationError(
                f"order backend {order_backend!r} made an object without find()"
            )
    return factory(catalogue, orders)


__all__ = [
    "AGENTS",
    "Agent",
    "AgentReply",
    "AgentRequest",
    "Progress",
    "ToolFinished",
    "ToolStarted",
    "make_agent",
]
