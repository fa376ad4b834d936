"""Checkpoints beside the writer, not in it.

In WAL mode every commit appends pages to the WAL, and a checkpoint copies
them back into the database file (and syncs both). SQLite runs one by itself
inside the commit that makes the WAL pass 1,000 pages, so that commit, and
every chat message waiting for it, waits for the copy: that was most of the
store's p99 (11-12 ms against 4-5 ms without, 50 sessions writing). So the
writer's automatic checkpoints are off, and a connection of its own runs a
PASSIVE checkpoint (it never blocks the writer or readers) in a worker thread
once a second while there are commits to copy. The WAL restarts from its start
after a checkpoint that caught up, and is truncated to JOURNAL_LIMIT then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

#: Seconds between checkpoints while commits come in.
EVERY = 1.0
#: Bytes the WAL file is cut back to when it restarts (it grows while busy).
JOURNAL_LIMIT = 64 * 1024 * 1024


class Checkpointer:
    """Copies committed pages into the file, in the background."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        # Its own connection, used by one worker thread at a time.
        self._connection = connection
        # For the log.
        self._path = path
        # Whether anything was committed since the last checkpoint.
        self._dirty = False
        # The loop that checkpoints; set by start().
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlite-checkpoints")

    def committed(self) -> None:
        """A transaction committed: there is something to copy."""
        self._dirty = True

    async def close(self) -> None:
        """Stop; the writer's own close checkpoints what is left and removes the WAL."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._connection.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(EVERY)
            if not self._dirty:
                continue
            self._dirty = False
            try:
                await asyncio.to_thread(self._checkpoint)
            except sqlite3.Error as exc:  # the next round tries again
                log.warning("checkpointing %s failed: %s", self._path, exc)

    def _checkpoint(self) -> None:
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
