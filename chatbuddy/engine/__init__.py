"""Engines keep sessions, history and fan-out; see :class:`Engine`."""

from chatbuddy.engine.base import Engine, EventSink, FrameSink
from chatbuddy.engine.memory import MemoryEngine

__all__ = ["Engine", "EventSink", "FrameSink", "MemoryEngine"]
