"""What the suite measures: which server, spoken to how, compared with what."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import servers

#: The coordinator's question: routing, a catalogue look-up, a reply in 3 chunks.
QUESTION = "Mennyi az ára a Samsung Galaxy S24-nek?"

Starter = Callable[[Path], contextlib.AbstractContextManager[servers.Running]]


@dataclass(frozen=True)
class Scenario:
    """One server configuration and the message its clients send."""

    #: Short name for --scenario and the JSON.
    key: str
    #: Name in the tables.
    label: str
    #: Starts a fresh server (and its Redis) in a folder of the run's own.
    start: Starter
    #: The chat text every message carries.
    message: str = "hello"
    #: The python-socketio scenario this one is compared with, where the issue compares them.
    peer: str | None = None
    #: Whether its clients offer permessage-deflate (as browsers do).
    deflate: bool = False


BASELINE = "tornado"

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(BASELINE, "tornado echo", servers.tornado_echo),
    Scenario(
        "socketio-memory",
        "python-socketio memory",
        lambda folder: servers.socketio_peer(folder, redis=False),
    ),
    Scenario(
        "socketio-redis",
        "python-socketio + Redis",
        lambda folder: servers.socketio_peer(folder, redis=True),
    ),
    Scenario(
        "memory-echo",
        "memory + echo",
        lambda folder: servers.chatbuddy(folder, agent="echo", redis=False, store="memory"),
        peer="socketio-memory",
    ),
    Scenario(
        "sqlite-echo",
        "sqlite + echo",
        lambda folder: servers.chatbuddy(folder, agent="echo", redis=False),
    ),
    Scenario(
        "memory-echo-audit",
        "memory + echo, audit log on",
        lambda folder: servers.chatbuddy(
            folder, agent="echo", redis=False, store="memory", audit=True
        ),
    ),
    Scenario(
        "memory-echo-no-metrics",
        "memory + echo, no metrics",
        lambda folder: servers.chatbuddy(
            folder, agent="echo", redis=False, store="memory", metrics=False
        ),
    ),
    Scenario(
        "memory-echo-limits",
        "memory + echo, limits checked",
        lambda folder: servers.chatbuddy(
            folder, agent="echo", redis=False, store="memory", limits_checked=True
        ),
    ),
    Scenario(
        "memory-coordinator",
        "memory + coordinator",
        lambda folder: servers.chatbuddy(folder, agent="coordinator", redis=False, store="memory"),
        message=QUESTION,
    ),
    Scenario(
        "memory-coordinator-deflate",
        "memory + coordinator, compressed",
        lambda folder: servers.chatbuddy(
            folder, agent="coordinator", redis=False, compression=True
        ),
        message=QUESTION,
        deflate=True,
    ),
    Scenario(
        "redis-echo",
        "redis + echo",
        lambda folder: servers.chatbuddy(folder, agent="echo", redis=True),
        peer="socketio-redis",
    ),
    Scenario(
        "redis-echo-2w",
        "redis + echo, 2 workers",
        lambda folder: servers.chatbuddy(folder, agent="echo", redis=True, workers=2),
    ),
)

BY_KEY = {scenario.key: scenario for scenario in SCENARIOS}


def base_scenarios(executable: Path, keys: list[str]) -> list[Scenario]:
    """ChatBuddy's scenarios ``keys`` again, run by another install's ``chatbuddy``
    (another version, e.g. a git worktree's), labelled ``@base``, to compare two
    versions side by side in one run."""
    command = [str(executable), "serve"]
    # A version from before --store kept memory by default and knows no such flag.
    knows_store = "--store" in _help(command)
    variants = []
    for key in keys:
        scenario = BY_KEY[key]
        agent = "coordinator" if "coordinator" in key else "echo"
        redis = key.startswith("redis")
        store = "memory" if key.startswith("memory") and knows_store else None

        def start(
            folder: Path, agent: str = agent, redis: bool = redis, store: str | None = store
        ) -> contextlib.AbstractContextManager[servers.Running]:
            return servers.chatbuddy(folder, agent=agent, redis=redis, store=store, command=command)

        variants.append(Scenario(f"{key}@base", f"{scenario.label} @base", start, scenario.message))
    return variants


def _help(command: list[str]) -> str:
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    return result.stdout


#: The scenarios that run ChatBuddy (the ones --base runs again with another version).
CHATBUDDY_SCENARIOS = ("memory-echo", "sqlite-echo", "memory-coordinator", "redis-echo")

#: The open-loop and idle measurements compare ChatBuddy's own overhead with the ceiling.
OPEN_LOOP_SCENARIOS = (BASELINE, "memory-echo")
IDLE_SCENARIOS = (BASELINE, "memory-echo")
#: Compression on and off: memory per connection after one reply each (a compressor's
#: window is only written to once something is sent).
COMPRESSION_IDLE_SCENARIOS = ("memory-coordinator", "memory-coordinator-deflate")
