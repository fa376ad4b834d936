"""Engines keep sessions, history and fan-out; see :class:`Engine`."""

from chatbuddy.engine.base import Engine, FrameSink
from chatbuddy.engine.memory import MemoryEngine

__all__ = ["Engine", "FrameSink", "MemoryEngine"]
