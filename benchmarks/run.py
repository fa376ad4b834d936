"""The benchmark suite: `python -m benchmarks.run` (see benchmarks/README.md).

Drives bare Tornado, python-socketio and ChatBuddy with an independent load
client (benchmarks/loadclient, Node + ws), round after round, every scenario
within a round side by side, so each median comes from runs made together on
the same machine. Every run starts fresh server processes, and records the CPU
of the server, Redis and the client, and the foreign load on the machine over
its measured window. Any error in a run fails it; the command then exits 3
after printing and writing everything.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import click
import tornado
from rich.console import Console

from benchmarks import client, machine, report, servers
from benchmarks.scenarios import (
    CHATBUDDY_SCENARIOS,
    COMPRESSION_IDLE_SCENARIOS,
    IDLE_SCENARIOS,
    OPEN_LOOP_SCENARIOS,
    SCENARIOS,
    Scenario,
    base_scenarios,
)
from chatbuddy import __version__

ROOT = Path(__file__).resolve().parent.parent

#: Seconds between a server's start and the first connection (the Redis node's
#: first heartbeat; the process settling after imports).
SETTLE = 1.0
#: Seconds idle connections are held before memory is read, so the server has
#: finished its part of every handshake.
IDLE_SETTLE = 2.0
#: A run whose load client used more than this many cores may have been limited by it.
CLIENT_BUSY_CORES = 0.9
#: An open-loop run whose client sent this late (p99, ms) could not keep its schedule.
SEND_LAG_LIMIT_MS = 5.0

KINDS = ("closed", "open", "idle")

PEER_PACKAGES = ("python-socketio", "python-engineio", "uvicorn", "websockets", "redis")


class RunsFailed(click.ClickException):
    """At least one run had an error (or did not complete)."""

    exit_code = 3


@dataclass(frozen=True)
class Job:
    """One measurement, repeated once per round."""

    kind: str  # closed | open | idle
    scenario: Scenario
    connections: int
    #: Idle: each connection gets one reply before memory is read.
    primed: bool = False


@dataclass(frozen=True)
class Plan:
    jobs: tuple[Job, ...]
    rounds: int
    duration: float
    warmup: float
    open_interval: float
    open_duration: float
    foreign_limit: float


class Window:
    """Samples the machine when the client starts and ends its measured window."""

    def __init__(self, server: servers.Running) -> None:
        # Whose CPU is ours (the client's pid is added when it reports).
        self._pids = {**server.pids, "runner": os.getpid()}
        # The samples, by event name.
        self._samples: dict[str, machine.CpuSample] = {}

    def on_event(self, name: str, client_pid: int) -> None:
        if name in ("window_start", "window_end"):
            self._samples[name] = machine.sample({**self._pids, "client": client_pid})

    def account(self) -> dict[str, Any] | None:
        """CPU over the window; None if the client never reported both ends."""
        if {"window_start", "window_end"} <= self._samples.keys():
            start, end = self._samples["window_start"], self._samples["window_end"]
            return machine.account(start, end).as_dict()
        return None


def measure(job: Job, plan: Plan, folder: Path) -> dict[str, Any]:
    """Start the job's server, run the load, stop the server: one run's record."""
    record: dict[str, Any] = {
        "kind": job.kind,
        "scenario": job.scenario.key,
        "label": job.scenario.label,
        "connections": job.connections,
        "primed": job.primed,
        "problems": [],
        "flags": [],
    }
    folder.mkdir(parents=True)
    try:
        with job.scenario.start(folder) as server:
            time.sleep(SETTLE)  # see SETTLE; a fixed pause before any measurement
            if job.kind == "idle":
                _idle(server, job, record)
            else:
                _loaded(server, job, plan, record)
            if not server.alive():
                record["problems"].append(f"the server exited during the run: {server.log_tail()}")
    except (servers.StartFailed, client.ClientFailed) as exc:
        record["problems"].append(str(exc))
    _judge(record, plan)
    return record


def _loaded(server: servers.Running, job: Job, plan: Plan, record: dict[str, Any]) -> None:
    """A closed- or open-loop run, with the machine sampled over its window."""
    if job.kind == "closed":
        load = client.Load(
            server.protocol, server.url, "closed", job.connections,
            warmup=plan.warmup, duration=plan.duration, message=job.scenario.message,
            deflate=job.scenario.deflate,
        )  # fmt: skip
    else:
        load = client.Load(
            server.protocol, server.url, "open", job.connections,
            # One interval of warm-up: every connection has sent once before the window.
            warmup=plan.open_interval, duration=plan.open_duration,
            interval=plan.open_interval, message=job.scenario.message,
            deflate=job.scenario.deflate,
        )  # fmt: skip
    window = Window(server)
    record["client"] = client.run(load, window.on_event)
    record["cpu"] = window.account()


def _idle(server: servers.Running, job: Job, record: dict[str, Any]) -> None:
    """Resident memory the server needs per idle connection."""
    before = machine.rss_kib(server.pid)
    load = client.Load(
        server.protocol, server.url, "idle", job.connections,
        message=job.scenario.message, deflate=job.scenario.deflate, prime=job.primed,
    )  # fmt: skip
    window = Window(server)
    with client.LoadClient(load, window.on_event) as running:
        opened = running.wait_for("opened", load.deadline())
        time.sleep(IDLE_SETTLE)  # see IDLE_SETTLE
        after = machine.rss_kib(server.pid)
        record["client"] = running.result()
    record["cpu"] = window.account()
    record["idle"] = {
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": round((after - before) / max(1, opened["opened"]), 2),
    }


def _judge(record: dict[str, Any], plan: Plan) -> None:
    """FAILED for any error or missing measurement; flags for doubtful conditions."""
    problems, flags = record["problems"], record["flags"]
    document = record.get("client")
    if document is None:
        if not problems:
            problems.append("no measurement")
    else:
        errors = document["errors"]
        if errors["total"]:
            kinds = ", ".join(f"{k} {v:,}" for k, v in errors.items() if k != "total" and v)
            types = ", ".join(f"{k} {v:,}" for k, v in document["error_types"].items())
            problems.append(f"{errors['total']:,} errors ({kinds}){f' [{types}]' if types else ''}")
        opened = document["connections"]["opened"]
        if opened < record["connections"]:
            problems.append(f"only {opened:,} of {record['connections']:,} connections opened")
        generator = report.generator_cores(record)
        if generator is not None and generator > CLIENT_BUSY_CORES:
            flags.append(f"load client used {generator:.2f} cores: it may have been the limit")
        lag = (document.get("send_lag_ms") or {}).get("p99")
        if lag is not None and lag > SEND_LAG_LIMIT_MS:
            flags.append(f"load client sent {lag:.1f} ms behind schedule (p99)")
    cpu = record.get("cpu")
    if cpu is None and document is not None:
        problems.append("the machine was not sampled over the window")
    elif cpu is not None and cpu["foreign_cores"] > plan.foreign_limit:
        flags.append(
            f"foreign load {cpu['foreign_cores']:.2f} cores (limit {plan.foreign_limit:g})"
        )
    record["status"] = "FAILED" if problems else "ok"


def _progress(number: int, plan: Plan, record: dict[str, Any]) -> str:
    line = (
        f"round {number}/{plan.rounds}  {record['kind']:<6} {record['label']:<24} "
        f"{record['connections']:>6,} conns  "
    )
    document = record.get("client")
    if record.get("idle"):
        line += f"{record['idle']['kib_per_connection']:7.1f} KiB/conn"
    elif document:
        line += f"{document['rate']:9,.0f}/s  p99 {document['latency_ms']['p99']:7.2f} ms"
    if record.get("cpu"):
        line += f"  foreign {record['cpu']['foreign_cores']:.2f}"
    return line + f"  {record['status']}"


def versions(runs: list[dict[str, Any]]) -> dict[str, str]:
    found = {"chatbuddy": __version__, "tornado": tornado.version}
    for package in PEER_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    for run in runs:
        if run.get("client"):
            found["node"] = run["client"]["client"]["node"]
            found["ws"] = run["client"]["client"]["ws"]
            break
    return found


def execute(plan: Plan) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="chatbuddy-bench-") as temporary:
        for number in range(1, plan.rounds + 1):
            for index, job in enumerate(plan.jobs):
                record = {
                    "round": number,
                    **measure(job, plan, Path(temporary) / f"{number}-{index}"),
                }
                runs.append(record)
                print(_progress(number, plan, record), file=sys.stderr, flush=True)
    return runs


QUICK = {
    "rounds": 1,
    "duration": 2.0,
    "warmup": 0.5,
    "connections": (50,),
    "open_connections": 1000,
    "open_interval": 1.0,
    "open_duration": 3.0,
    "idle": 2000,
}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--scenario",
    "scenario_keys",
    multiple=True,
    type=click.Choice([s.key for s in SCENARIOS]),
    help="Closed-loop scenarios to run (repeatable; default: all).",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KINDS),
    help="Measurements to run (repeatable; default: all): closed loop, open loop, idle memory.",
)
@click.option(
    "--connections",
    "-c",
    multiple=True,
    type=click.IntRange(1),
    default=(50, 500, 2000),
    show_default=True,
    help="Closed-loop connection counts (repeatable).",
)
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True)
@click.option("--duration", type=click.FloatRange(0.1), default=5.0, show_default=True,
              help="Seconds measured per closed-loop run.")  # fmt: skip
@click.option("--warmup", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Seconds of load before a closed-loop run measures.")  # fmt: skip
@click.option("--open-connections", type=click.IntRange(0), default=10_000, show_default=True,
              help="Open-loop connections (0: skip the open loop).")  # fmt: skip
@click.option("--open-interval", type=click.FloatRange(0.01), default=5.0, show_default=True,
              help="Open loop: seconds between two messages of one connection.")  # fmt: skip
@click.option("--open-duration", type=click.FloatRange(0.1), default=15.0, show_default=True,
              help="Open loop: seconds measured (after one interval of warm-up).")  # fmt: skip
@click.option("--idle", type=click.IntRange(0), default=10_000, show_default=True,
              help="Idle connections for memory per connection (0: skip).")  # fmt: skip
@click.option("--foreign-limit", type=click.FloatRange(0), default=0.2, show_default=True,
              help="Flag runs whose foreign load exceeded this many cores.")  # fmt: skip
@click.option("--quick", is_flag=True,
              help="Smoke run: 1 round, 50 connections, 2 s runs, open loop 1,000 × 1/s, "
              "idle 2,000 (options given explicitly still win).")  # fmt: skip
@click.option(
    "--base",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Another install's `chatbuddy` executable: ChatBuddy's chosen scenarios run "
    "again with it, labelled @base, interleaved with this version's (an A/B in one run).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ROOT / "benchmarks" / "results" / "latest.json",
    show_default="benchmarks/results/latest.json",
)
@click.pass_context
def main(
    ctx: click.Context,
    scenario_keys: tuple[str, ...],
    kinds: tuple[str, ...],
    connections: tuple[int, ...],
    rounds: int,
    duration: float,
    warmup: float,
    open_connections: int,
    open_interval: float,
    open_duration: float,
    idle: int,
    foreign_limit: float,
    quick: bool,
    base: Path | None,
    out: Path,
) -> None:
    """Run the benchmark suite and print its tables; JSON goes to --out."""
    options = dict(ctx.params)
    if quick:
        for name, value in QUICK.items():
            if ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT:
                options[name] = value
    client.command()  # fail now, not after the first server started, if Node is missing
    client.raise_descriptor_limit(max([*options["connections"], options["open_connections"],
                                       options["idle"]]))  # fmt: skip
    chosen = [s for s in SCENARIOS if not scenario_keys or s.key in scenario_keys]
    if base is not None:
        ours = [s.key for s in chosen if s.key in CHATBUDDY_SCENARIOS]
        chosen += base_scenarios(base, ours)
    kinds = kinds or KINDS
    jobs = []
    if "closed" in kinds:
        jobs += [Job("closed", s, c) for c in options["connections"] for s in chosen]
    if "open" in kinds and options["open_connections"]:
        jobs += [
            Job("open", s, options["open_connections"])
            for s in SCENARIOS
            if s.key in OPEN_LOOP_SCENARIOS
        ]
    if "idle" in kinds and options["idle"]:
        jobs += [Job("idle", s, options["idle"]) for s in SCENARIOS if s.key in IDLE_SCENARIOS]
        jobs += [
            Job("idle", s, options["idle"], primed=True)
            for s in chosen
            if s.key in COMPRESSION_IDLE_SCENARIOS
        ]
    plan = Plan(
        jobs=tuple(jobs),
        rounds=options["rounds"],
        duration=options["duration"],
        warmup=options["warmup"],
        open_interval=options["open_interval"],
        open_duration=options["open_duration"],
        foreign_limit=foreign_limit,
    )
    console = Console(width=max(Console().width, 180))
    changed = [s.as_dict() for s in servers.CHATBUDDY_CHANGED_SETTINGS]
    console.print(
        "ChatBuddy's settings changed from its defaults: "
        + ", ".join(f"{c['flag']} {c['value']}" for c in changed),
        highlight=False,
    )
    started = time.monotonic()
    runs = execute(plan)
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "versions": versions(runs),
        "config": {
            "rounds": plan.rounds,
            "duration": plan.duration,
            "warmup": plan.warmup,
            "connections": list(options["connections"]),
            "scenarios": [s.key for s in chosen],
            "kinds": list(kinds),
            "open_connections": options["open_connections"],
            "open_interval": plan.open_interval,
            "open_duration": plan.open_duration,
            "idle": options["idle"],
            "foreign_limit": foreign_limit,
            "quick": quick,
        },
        "chatbuddy_changed_settings": changed,
        "redis_settings": list(servers.REDIS_SETTINGS),
        "suite_seconds": round(time.monotonic() - started, 1),
        "failed_runs": sum(run["status"] == "FAILED" for run in runs),
        "summary": report.summarize(runs),
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False))
    report.render(document, console)
    console.print(f"results: {out}", highlight=False)
    if document["failed_runs"]:
        raise RunsFailed(f"{document['failed_runs']} of {len(runs)} runs FAILED (see above)")


if __name__ == "__main__":
    main()
