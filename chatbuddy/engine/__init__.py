"""Engines keep sessions, history, fan-out and presence; see :class:`Engine`."""

from chatbuddy.engine.base import AddedMessage, Engine, Frame, NodeLink, Presence, frame_text
from chatbuddy.engine.memory import MemoryEngine

__all__ = [
    "AddedMessage",
    "Engine",
    "Frame",
    "MemoryEngine",
    "NodeLink",
    "Presence",
    "frame_text",
]
