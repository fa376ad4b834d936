"""The SQLite engine's store: durable sessions and history for one process.

``store.py`` is the store, ``batch.py`` its group commit, ``writer.py`` the one
thread that writes, ``schema.py`` the tables and their migrations, ``rows.py``
the statements, ``lock.py`` the lock that keeps a second process off the file.
It pairs with the in-process bus (docs/storage.md).
"""

from __future__ import annotations

from chatbuddy.engine.sqlite.schema import MIGRATIONS, VERSION, StoreFileError
from chatbuddy.engine.sqlite.store import SQLiteStore

__all__ = ["MIGRATIONS", "VERSION", "SQLiteStore", "StoreFileError"]
