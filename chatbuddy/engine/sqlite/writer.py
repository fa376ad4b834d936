"""The one writer: runs the store's write jobs on its connection, in order.

Jobs (functions of the write connection) run one after another in the order
they were submitted, so the group-commit batches and the erasures between them
keep their order; the caller awaits a future resolved when its job is done.
Two writers do that:

- :class:`LoopWriter` (``synchronous=NORMAL``, the default) runs each job on the
  event loop at once. In WAL mode with NORMAL a commit hands its pages to the
  operating system and never waits for the disk, so it costs tens of
  microseconds, less than a trip to a thread: measured on the server (50
  connections, sqlite + echo), the thread cost 60-70 µs more CPU per message,
  most of it the GIL changing hands between the busy loop and the thread once
  per row (docs/storage.md).
- :class:`ThreadWriter` (``synchronous=FULL``) runs them in a thread of its
  own, because there every commit waits for an ``fsync`` of the WAL, which the
  loop must not wait for. One job is one trip (aiosqlite makes one trip per
  statement; ``benchmarks/sqlite_writer_micro.py`` compares them).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

#: Milliseconds the loop waits for a write lock another program holds.
BUSY_MS = 100

#: A job: what to do with the connection, and the future that gets its result.
_Job = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]


class Writer(Protocol):
    """What the store needs of a writer."""

    def start(self) -> None: ...

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run ``work(connection)`` after every job submitted before it; its result."""
        ...

    async def close(self) -> None:
        """Finish the jobs already submitted and close the connection."""
        ...


class LoopWriter:
    """Runs each job at once, on the event loop, on one connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        # The write connection. Another program holding the file's write lock
        # stalls the loop at most this long; then the write fails, retryably.
        connection.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        self._connection = connection
        # Where futures are made; set by start().
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        assert self._loop is not None, "start() the writer first"
        future: asyncio.Future[T] = self._loop.create_future()
        try:
            future.set_result(work(self._connection))
        except Exception as exc:  # handed to the awaiting side, never lost
            future.set_exception(exc)
        return future

    async def close(self) -> None:
        self._connection.close()


class ThreadWriter:
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
