"""The benchmark suite: `python -m benchmarks.run` (see docs/performance.md).

Starts a bare Tornado echo server (the ceiling of our stack) and ChatBuddy in
each configuration, then drives them with the same load generator, scenario
after scenario, round after round, so every median comes from runs made side
by side on the same machine. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tornado
from rich import box
from rich.console import Console
from rich.table import Table

from chatbuddy import __version__

# setup.py maps cli/ to chatbuddy.cli; mypy checks that folder as "cli".
from chatbuddy.cli.loadgen import (  # type: ignore[import-not-found,unused-ignore]
    LoadResult,
    LoadTarget,
    hold_idle,
    run_load,
)

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Mennyi az ára a Samsung Galaxy S24-nek?"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    target: LoadTarget

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert match is not None
        return int(match.group(1))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _start(
    command: list[str], pattern: str, env: dict[str, str]
) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert process.stdout is not None
    # poll, not select: after the idle test this process holds >1024 descriptors.
    poller = select.poll()
    poller.register(process.stdout, select.POLLIN)
    line = process.stdout.readline() if poller.poll(20_000) else ""
    match = re.search(pattern, line)
    if match is None:
        process.kill()
        raise RuntimeError(f"{command} did not start: {line!r}")
    return process, int(match.group(1))


def start_echo() -> Server:
    process, port = _start(
        [sys.executable, "-m", "benchmarks.echo_server"], r"listening on (\d+)", dict(os.environ)
    )
    return Server(
        "tornado echo", process, LoadTarget(f"ws://127.0.0.1:{port}/echo", chatbuddy=False)
    )


def start_chatbuddy(name: str, agent: str, message: str, runtime: Path, *extra: str) -> Server:
    env = {**os.environ, "CHATBUDDY_RUNTIME_DIR": str(runtime)}
    process, port = _start(
        [
            sys.executable, "-m", "chatbuddy", "serve", "--port", "0", "--agent", agent,
            # Capacity, not the per-connection limit a public server should keep.
            "--rate-limit", "0", "--log-level", "warning", *extra,
        ],
        r"serving on http://127\.0\.0\.1:(\d+)/",
        env,
    )  # fmt: skip
    return Server(name, process, LoadTarget(f"http://127.0.0.1:{port}", message=message))


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    from tests.redis_server import RedisServer  # the same throwaway server the tests use

    folder.mkdir(parents=True, exist_ok=True)
    server = RedisServer(folder)
    server.start()
    assert server.process is not None
    return server.process, server.url


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "tornado": tornado.version,
        "chatbuddy": __version__,
        "kernel": platform.release(),
    }


async def load_rounds(
    servers: list[Server], connection_counts: list[int], rounds: int, duration: float, warmup: float
) -> dict[str, dict[int, list[LoadResult]]]:
    results: dict[str, dict[int, list[LoadResult]]] = {
        s.name: {c: [] for c in connection_counts} for s in servers
    }
    for number in range(1, rounds + 1):
        for connections in connection_counts:
            for server in servers:
                result = await run_load(
                    server.target, connections=connections, duration=duration, warmup=warmup
                )
                results[server.name][connections].append(result)
                print(
                    f"round {number}/{rounds}  {server.name:<26} {connections:>3} conns  "
                    f"{result.rate:9.0f}/s  p99 {result.p99_ms:6.2f} ms",
                    file=sys.stderr,
                )
    return results


async def idle_memory(server: Server, count: int) -> dict[str, float]:
    """Resident memory the server needs per idle connection."""
    await asyncio.sleep(0.5)
    before = server.rss_kib()
    held = await hold_idle(server.target, count)
    await asyncio.sleep(2.0)  # let the server finish its part of the handshakes
    after = server.rss_kib()
    for connection in held:
        connection.close()
    await asyncio.gather(*(connection.closed for connection in held))
    return {
        "connections": count,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": round((after - before) / count, 2),
    }


def median_of(runs: list[LoadResult]) -> dict[str, float]:
    return {
        key: round(statistics.median(getattr(r, key) for r in runs), 3)
        for key in ("rate", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors")
    }


def report(document: dict[str, Any], console: Console) -> None:
    baseline = document["medians"]["tornado echo"]
    rounds = document["config"]["rounds"]
    title = f"ChatBuddy {document['machine']['chatbuddy']}: medians of {rounds} rounds"
    table = Table(title=title, box=box.SIMPLE_HEAVY)
    for column in (
        "scenario",
        "conns",
        "replies/s",
        "× bare",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
    ):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for name, by_count in document["medians"].items():
        for count, median in by_count.items():
            ratio = median["rate"] / baseline[count]["rate"] if baseline[count]["rate"] else 0
            table.add_row(
                name, str(count), f"{median['rate']:,.0f}", f"{ratio:.2f}",
                f"{median['p50_ms']:.2f}", f"{median['p90_ms']:.2f}", f"{median['p99_ms']:.2f}",
                f"{median['max_ms']:.2f}", f"{median['errors']:.0f}",
            )  # fmt: skip
    console.print(table)
    idle = document.get("idle")
    if idle:
        memory = Table(title="Idle connections: resident memory", box=box.SIMPLE_HEAVY)
        for column in ("server", "connections", "RSS before", "RSS after", "per connection"):
            memory.add_column(column, justify="left" if column == "server" else "right")
        for name, figures in idle.items():
            memory.add_row(
                name,
                f"{figures['connections']:,}",
                f"{figures['rss_before_kib'] / 1024:.1f} MiB",
                f"{figures['rss_after_kib'] / 1024:.1f} MiB",
                f"{figures['kib_per_connection']:.1f} KiB",
            )
        console.print(memory)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="chatbuddy-bench-"))
    redis_process, redis_url = start_redis(folder / "redis")
    servers = [
        start_echo(),
        start_chatbuddy("memory + echo", "echo", "hello", folder),
        start_chatbuddy("memory + coordinator", "coordinator", QUESTION, folder),
        start_chatbuddy("redis + echo", "echo", "hello", folder, "--redis-url", redis_url),
    ]
    try:
        await asyncio.sleep(1.0)  # the Redis node's first heartbeat
        results = await load_rounds(
            servers, args.connections, args.rounds, args.duration, args.warmup
        )
    finally:
        for server in servers:
            server.stop()
    idle: dict[str, dict[str, float]] = {}
    if args.idle:
        for make in (start_echo, lambda: start_chatbuddy("memory + echo", "echo", "hi", folder)):
            server = make()
            try:
                idle[server.name] = await idle_memory(server, args.idle)
            finally:
                server.stop()
    redis_process.terminate()
    redis_process.wait(10)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "rounds": args.rounds,
            "duration": args.duration,
            "warmup": args.warmup,
            "connections": args.connections,
            "idle": args.idle,
        },
        "medians": {
            name: {count: median_of(runs) for count, runs in by_count.items()}
            for name, by_count in results.items()
        },
        "runs": {
            name: {count: [r.as_dict() for r in runs] for count, runs in by_count.items()}
            for name, by_count in results.items()
        },
        "idle": idle,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="runs of every scenario (default 5)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--idle", type=int, default=10_000, help="idle connections (0: skip)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    started = time.monotonic()
    document = asyncio.run(main(arguments))
    document["suite_seconds"] = round(time.monotonic() - started, 1)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(document, indent=1))
    report(document, Console(width=max(Console().width, 110)))
    print(f"results: {arguments.out}")
