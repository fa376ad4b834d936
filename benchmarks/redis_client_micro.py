"""RedisClient against redis-py's asyncio client: `python -m benchmarks.redis_client_micro`.

N tasks each run EVALSHA of a small script in a loop for a few seconds, with
chatbuddy.engine.redis.client.RedisClient ("ours") and with
redis.asyncio.Redis and its default pool ("redis-py"), and that pool allowed
1,000 connections ("redis-py-1000"). Each measurement runs in a fresh child
process, so its CPU seconds (user + system, from
time.process_time) are the client's alone; the server is a throwaway
redis-server without persistence. Rounds interleave the clients and
concurrencies so medians come from runs made side by side.

Reported per run: successful commands per second, failed commands, and the
client process's CPU seconds per 1,000 successful commands.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

#: A script like the engine's hot path: touch a hash, answer with a number.
SCRIPT = "redis.call('HINCRBY', KEYS[1], 'n', 1) return redis.call('HLEN', KEYS[1])"
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis's script id
#: "redis-py" is the engine's setup (the default pool: 100 connections at most);
#: "redis-py-1000" lifts the cap, to show the pool's cost apart from its limit.
CLIENTS = ("ours", "redis-py", "redis-py-1000")


async def drive(client_name: str, url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """Run the load in this process; counts, errors and CPU of the measured window."""
    done = 0
    errors: dict[str, int] = {}
    measuring = False
    stop = False

    if client_name == "ours":
        from chatbuddy.engine.redis.client import RedisClient

        ours = RedisClient.from_url(url)

        async def call(key: str) -> Any:
            return await ours.evalsha(SHA, [key], [], script=SCRIPT)

        async def close() -> None:
            await ours.close()

    else:
        import redis.asyncio as aioredis

        limit = 1000 if client_name == "redis-py-1000" else None
        theirs = aioredis.Redis.from_url(url, decode_responses=True, max_connections=limit)

        async def call(key: str) -> Any:
            return await theirs.evalsha(SHA, 1, key)

        async def close() -> None:
            await theirs.aclose()

    async def worker(index: int) -> None:
        nonlocal done
        key = f"bench:{{{index}}}"
        while not stop:
            try:
                await call(key)
            except Exception as exc:
                if measuring:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(0)  # an error raised without yielding must not starve the rest
            else:
                if measuring:
                    done += 1

    await call("bench:warm-up")  # the script is loaded before anything is measured
    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    await asyncio.sleep(0.5)  # connections made, steady state
    measuring = True
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    measuring = False
    stop = True
    await asyncio.gather(*tasks)
    await close()
    return {"commands": done, "errors": errors, "cpu_seconds": cpu, "seconds": wall}


def run_child(client_name: str, url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    output = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.redis_client_micro", "--child", client_name,
            "--url", url, "--concurrency", str(concurrency), "--seconds", str(seconds),
        ],
        check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(output.stdout)
    return result


def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Medians over rounds of commands/s, errors and CPU seconds per 1,000 commands."""
    rates = [run["commands"] / run["seconds"] for run in runs]
    failures = [sum(run["errors"].values()) for run in runs]
    cpu = [1000 * run["cpu_seconds"] / run["commands"] for run in runs if run["commands"]]
    return {
        "commands_per_second": statistics.median(rates),
        "errors": statistics.median(failures),
        "cpu_seconds_per_1000": statistics.median(cpu) if cpu else float("nan"),
    }


def table(results: dict[tuple[str, int], list[dict[str, Any]]], rounds: int) -> Table:
    out = Table(
        title=f"EVALSHA in a loop, medians of {rounds} interleaved rounds", box=box.SIMPLE_HEAD
    )
    for column in ("client", "tasks", "commands/s", "errors", "CPU s / 1k cmds", "error kinds"):
        out.add_column(column, justify="left" if column in ("client", "error kinds") else "right")
    for (client_name, concurrency), runs in results.items():
        row = summary(runs)
        kinds = sorted({kind for run in runs for kind in run["errors"]})
        out.add_row(
            client_name,
            str(concurrency),
            f"{row['commands_per_second']:,.0f}",
            f"{row['errors']:,.0f}",
            f"{row['cpu_seconds_per_1000']:.3f}",
            ", ".join(kinds),
        )
    return out


def ratios(results: dict[tuple[str, int], list[dict[str, Any]]]) -> list[str]:
    """ours / redis-py, round by round (side by side), then the median."""
    lines = []
    for concurrency in sorted({c for _, c in results}):
        ours, theirs = results[("ours", concurrency)], results[("redis-py", concurrency)]
        speed = [
            (a["commands"] / a["seconds"]) / max(b["commands"] / b["seconds"], 1e-9)
            for a, b in zip(ours, theirs, strict=True)
        ]
        cpu = [
            (a["cpu_seconds"] / a["commands"]) / (b["cpu_seconds"] / b["commands"])
            for a, b in zip(ours, theirs, strict=True)
            if a["commands"] and b["commands"]
        ]
        lines.append(
            f"{concurrency} tasks: ours/redis-py commands/s x{statistics.median(speed):.2f}, "
            f"CPU per command x{statistics.median(cpu):.2f}"
            if cpu
            else ""
        )
    return lines


def main(args: argparse.Namespace) -> None:
    from tests.redis_server import RedisServer  # the same throwaway server the tests use

    with tempfile.TemporaryDirectory() as folder:
        # No fsync per write: the client is measured, not the disk.
        server = RedisServer(Path(folder), extra_args=["--appendonly", "no"])
        server.start()
        try:
            results: dict[tuple[str, int], list[dict[str, Any]]] = {
                (name, c): [] for c in args.concurrency for name in CLIENTS
            }
            for round_number in range(1, args.rounds + 1):
                for concurrency in args.concurrency:
                    order = CLIENTS if round_number % 2 else CLIENTS[::-1]
                    for name in order:
                        run = run_child(name, server.url, concurrency, args.seconds)
                        results[(name, concurrency)].append(run)
                        print(f"round {round_number} {name:8} {concurrency:4} tasks: {run}")
        finally:
            server.stop()
    console = Console(width=110)
    console.print(table(results, args.rounds))
    for line in ratios(results):
        console.print(line)
    if args.json:
        document = {f"{name}@{c}": runs for (name, c), runs in results.items()}
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--json", help="also write every run here")
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.child:
        measured = asyncio.run(
            drive(arguments.child, arguments.url, arguments.concurrency[0], arguments.seconds)
        )
        print(json.dumps(measured))
    else:
        main(arguments)
