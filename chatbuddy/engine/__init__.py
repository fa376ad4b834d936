"""Engines keep sessions, history, fan-out and presence; see :class:`Engine`."""

from chatbuddy.engine.base import AddedMessage, Engine, NodeLink, Presence
from chatbuddy.engine.memory import MemoryEngine

__all__ = ["AddedMessage", "Engine", "MemoryEngine", "NodeLink", "Presence"]
