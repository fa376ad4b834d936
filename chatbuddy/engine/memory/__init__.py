"""The in-memory engine's store: the default of the tests, for one server process.

``store.py`` is the store (``MemoryStore``): sessions and history, on
``handoff_store.py`` (the hand-off to a person) and ``base.py`` (the sessions
kept, and how a message is kept). It pairs with the in-process bus.
"""

from __future__ import annotations

from chatbuddy.engine.memory.store import MemoryStore

__all__ = ["MemoryStore"]
