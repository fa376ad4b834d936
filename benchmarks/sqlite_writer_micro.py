"""Which writer for the SQLite store: `python -m benchmarks.sqlite_writer_micro`.

The store's writes go through one writer with group commit: every write made
while the writer is busy joins the next transaction, and each write's caller
waits for that commit. This measures the writer alone, with the same group
commit in front of it, on three designs:

- ``thread``: chatbuddy.engine.sqlite.writer.Writer, one thread of our own; a
  batch is one job (one trip to the thread and back);
- ``aiosqlite``: aiosqlite's connection (also one thread); a batch is a BEGIN,
  one executemany per table and a COMMIT, each its own trip;
- ``aiosqlite-each``: aiosqlite with no group commit, a transaction per write
  (how it is often used), to show what group commit buys.

N tasks each store a message and then its reply (two writes, each awaited, as
a chat message does) in a loop, on their own sessions. Each measurement runs
in a fresh child process, so its CPU seconds are the writer's alone; rounds
interleave the designs. Reported: writes per second, p50/p99 of a write's wait,
CPU seconds per 1,000 writes, and writes per transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from chatbuddy.engine.sqlite.schema import connect, migrate
from chatbuddy.engine.sqlite.writer import ThreadWriter, transaction

DESIGNS = ("thread", "aiosqlite", "aiosqlite-each")
INSERT = "INSERT OR REPLACE INTO messages (session_id, id, body) VALUES (?, ?, ?)"
UPDATE = "UPDATE sessions SET last_activity = ?, message_count = ?, seq = ? WHERE session_id = ?"
BODY = json.dumps({"role": "user", "content": "hello " * 8, "timestamp": "2024-01-15T10:30:00Z"})

Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


class GroupCommit:
    """The store's policy: rows wait in a batch; one batch is written at a time."""

    def __init__(self, write: Callable[[Rows], Awaitable[None]]) -> None:
        self._write = write
        self._messages: list[tuple[Any, ...]] = []
        self._updates: list[tuple[Any, ...]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._busy = False
        self.transactions = 0

    async def store(self, message: tuple[Any, ...], update: tuple[Any, ...]) -> None:
        self._messages.append(message)
        self._updates.append(update)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._flush()))
        await waiter

    async def _flush(self) -> None:
        while self._waiters:
            rows = (self._messages, self._updates)
            waiters = self._waiters
            self._messages, self._updates, self._waiters = [], [], []
            await self._write(rows)
            self.transactions += 1
            for waiter in waiters:
                waiter.set_result(None)
        self._busy = False


def _write_rows(connection: sqlite3.Connection, rows: Rows) -> None:
    def statements() -> None:
        connection.executemany(INSERT, rows[0])
        connection.executemany(UPDATE, rows[1])

    transaction(connection, statements)


async def drive(design: str, path: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    setup = connect(path, synchronous="normal")
    migrate(setup, path)
    setup.executemany(
        "INSERT INTO sessions (session_id, token_hash, client_info, created_at, connected_at, "
        "last_activity) VALUES (?, 'h', '{}', 0, 0, 0)",
        [(f"s{n}",) for n in range(concurrency)],
    )
    setup.close()

    close: Callable[[], Awaitable[None]]
    if design == "thread":
        writer = ThreadWriter(connect(path, synchronous="normal"), name="micro-writer")
        writer.start()

        async def write_batch(rows: Rows) -> None:
            await writer.submit(lambda connection: _write_rows(connection, rows))

        committer = GroupCommit(write_batch)
        store = committer.store
        close = writer.close
    else:
        import aiosqlite

        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")

        async def write_aio(rows: Rows) -> None:
            await db.execute("BEGIN IMMEDIATE")
            await db.executemany(INSERT, rows[0])
            await db.executemany(UPDATE, rows[1])
            await db.execute("COMMIT")

        committer = GroupCommit(write_aio)
        if design == "aiosqlite":
            store = committer.store
        else:
            one_at_a_time = asyncio.Lock()  # one connection: one transaction at a time

            async def store(message: tuple[Any, ...], update: tuple[Any, ...]) -> None:
                async with one_at_a_time:
                    await write_aio(([message], [update]))
                committer.transactions += 1

        close = db.close

    waits: list[float] = []
    measuring = stop = False

    async def session(n: int) -> None:
        sid, seq = f"s{n}", 0
        while not stop:
            for _ in range(2):  # the message, then its reply
                seq += 1
                started = time.perf_counter()
                await store((sid, seq, BODY), (time.time(), seq, seq, sid))
                if measuring:
                    waits.append(time.perf_counter() - started)

    tasks = [asyncio.create_task(session(n)) for n in range(concurrency)]
    await asyncio.sleep(0.5)  # warm-up
    measuring = True
    cpu, wall, transactions = time.process_time(), time.perf_counter(), committer.transactions
    await asyncio.sleep(seconds)
    measuring = False
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    transactions = committer.transactions - transactions
    stop = True
    await asyncio.gather(*tasks)
    await close()
    waits.sort()
    count = len(waits)
    return {
        "design": design,
        "concurrency": concurrency,
        "writes_per_s": count / wall,
        "p50_ms": 1000 * waits[count // 2],
        "p99_ms": 1000 * waits[min(count - 1, int(0.99 * count))],
        "cpu_s_per_1000": 1000 * cpu / max(count, 1),
        "writes_per_transaction": count / max(transactions, 1),
    }


def run_child(design: str, concurrency: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            [
                sys.executable, "-m", "benchmarks.sqlite_writer_micro", "--child", design,
                "--path", str(Path(folder) / "micro.db"), "-c", str(concurrency),
                "--seconds", str(seconds),
            ],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=DESIGNS)
    parser.add_argument("--path", type=Path)
    parser.add_argument("-c", "--concurrency", type=int, action="append")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        print(
            json.dumps(asyncio.run(drive(args.child, args.path, args.concurrency[0], args.seconds)))
        )
        return
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(args.rounds):
        for concurrency in args.concurrency or [1, 50]:
            for design in DESIGNS:
                run = run_child(design, concurrency, args.seconds)
                results.setdefault((design, concurrency), []).append(run)
    table = Table(title=f"SQLite writers, median of {args.rounds}", box=box.SIMPLE_HEAVY)
    columns = ("writes_per_s", "p50_ms", "p99_ms", "cpu_s_per_1000", "writes_per_transaction")
    for column in ("design", "tasks", *columns):
        table.add_column(column, justify="right")
    for (design, concurrency), runs in results.items():
        medians = [statistics.median(run[c] for run in runs) for c in columns]
        table.add_row(design, str(concurrency), *(f"{m:,.2f}" for m in medians))
    Console().print(table)


if __name__ == "__main__":
    main()
