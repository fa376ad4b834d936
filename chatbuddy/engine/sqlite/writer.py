"""The one writer: a thread that owns the write connection and runs jobs in order.

The event loop never waits for the disk: it hands a job (a function of the
connection) to this thread and awaits a future the thread resolves when the
job is done. Jobs run one after another in the order they were submitted, so
the group-commit batches and the erasures between them keep their order.

Why a thread of our own and not aiosqlite: aiosqlite is also one thread per
connection, but every statement is a separate trip to it and back; a batch of
messages costs five or six such trips, here it costs one
(docs/storage.md has the measurement, ``benchmarks/sqlite_writer_micro.py``).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: A job: what to do with the connection, and the future that gets its result.
_Job = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]


class Writer:
    """Runs jobs on one connection in one thread, in submission order."""

    def __init__(self, connection: sqlite3.Connection, *, name: str) -> None:
        # The write connection; used only by the thread once started.
        self._connection = connection
        # Jobs waiting for the thread; None tells it to stop.
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # The thread; a daemon, so a process that dies does not wait for it.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        # Where futures are resolved; set by start().
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run ``work(connection)`` after every job submitted before it; its result."""
        assert self._loop is not None, "start() the writer first"
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((work, future))
        return future

    async def close(self) -> None:
        """Finish the jobs already submitted, stop the thread, close the connection."""
        if self._thread.is_alive():
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)
        self._connection.close()

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        while (job := self._jobs.get()) is not None:
            work, future = job
            try:
                result, error = work(self._connection), None
            except BaseException as exc:  # handed to the awaiting side, never lost
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def transaction(connection: sqlite3.Connection, work: Callable[[], T]) -> T:
    """``work()`` inside one write transaction: committed whole, or rolled back."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work()
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result
