"""Run the independent Node load client (benchmarks/loadclient/client.mjs).

The client prints its progress as JSON lines on stderr (``opened``,
``window_start``, ``window_end``) and one JSON document on stdout when it
ends. This module starts it, calls back on each event (the runner samples the
machine's CPU there, so the accounting covers exactly the measured window),
and returns the document.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

FOLDER = Path(__file__).resolve().parent / "loadclient"
SCRIPT = FOLDER / "client.mjs"

#: Descriptors the client needs besides one per connection.
SPARE_DESCRIPTORS = 100

#: Handshakes in flight at once while opening connections.
PARALLEL_HANDSHAKES = 200


#: Called with an event's name (opened, window_start, window_end) and the client's pid.
EventHandler = Callable[[str, int], None]


class ClientUnavailable(click.ClickException):
    """Node, or the client's npm packages, are not installed."""

    exit_code = 4


class ClientFailed(RuntimeError):
    """The client crashed, or did not finish in time."""


@dataclass(frozen=True)
class Load:
    """What the client should do (see client.mjs for each mode)."""

    protocol: str
    url: str
    mode: str
    connections: int
    warmup: float = 1.0
    duration: float = 5.0
    #: Open loop: seconds between two messages of one connection.
    interval: float = 5.0
    #: Open loop: seconds to wait for the window's replies after it.
    drain: float | None = None
    message: str = "hello"
    #: Seconds a handshake, or a closed-loop reply, may take before it counts as an error.
    timeout: float = 10.0
    #: Idle: the most seconds to hold the connections.
    hold: float = 600.0
    #: Offer permessage-deflate, as browsers do.
    deflate: bool = False
    #: Idle: each connection gets one reply before the hold.
    prime: bool = False

    def arguments(self) -> list[str]:
        arguments = [
            "--protocol", self.protocol, "--url", self.url, "--mode", self.mode,
            "--connections", str(self.connections), "--warmup", str(self.warmup),
            "--duration", str(self.duration), "--interval", str(self.interval),
            "--message", self.message, "--timeout", str(self.timeout),
            "--parallel", str(PARALLEL_HANDSHAKES), "--hold", str(self.hold),
        ]  # fmt: skip
        if self.drain is not None:
            arguments += ["--drain", str(self.drain)]
        arguments += ["--deflate"] * self.deflate + ["--prime"] * self.prime
        return arguments

    def deadline(self) -> float:
        """Seconds after which the client is stuck, not slow."""
        opening = 30 + self.connections / 100  # far slower than any server here opens them
        drain = self.interval if self.drain is None else self.drain
        running = self.warmup + self.duration + (drain if self.mode == "open" else 0)
        return opening + running + 30


def command() -> list[str]:
    """The command line that starts the client; raises ClientUnavailable with how to fix it."""
    node = shutil.which("node")
    if node is None:
        raise ClientUnavailable(
            "the benchmark's load client needs Node.js 20 or later (`node` is not on PATH); "
            "install it, then run `npm ci --prefix benchmarks/loadclient`"
        )
    if not (FOLDER / "node_modules" / "ws" / "package.json").exists():
        raise ClientUnavailable(
            "the load client's npm packages are missing: run "
            "`npm ci --prefix benchmarks/loadclient` (installs the `ws` version pinned "
            "in benchmarks/loadclient/package-lock.json)"
        )
    return [node, str(SCRIPT)]


def raise_descriptor_limit(connections: int) -> int:
    """Raise this process's open-file limit (inherited by every child) to its
    hard limit; the limit now. Raises if ``connections`` cannot fit under it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if connections + SPARE_DESCRIPTORS > hard:
        raise click.ClickException(
            f"{connections:,} connections need more open files than the hard limit of "
            f"{hard:,} (raise it with `ulimit -Hn` or in limits.conf)"
        )
    return hard


class LoadClient:
    """One running client; use as a context manager so it never outlives the run."""

    def __init__(self, load: Load, on_event: EventHandler | None = None) -> None:
        # What it was asked to do (its deadline comes from it).
        self.load = load
        # Called from the reader thread with each event's name and the client's pid.
        self._on_event = on_event
        # Events seen so far, with their fields.
        self._events: dict[str, dict[str, Any]] = {}
        # stderr lines that are not events (Node warnings, crashes), for the report.
        self.diagnostics: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [*command(), *load.arguments()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                event = json.loads(line)
                name = str(event.pop("event"))
            except (ValueError, KeyError, AttributeError, TypeError):
                self.diagnostics.append(line.rstrip())
                continue
            if self._on_event is not None:
                self._on_event(name, self.process.pid)
            with self._changed:
                self._events[name] = event
                self._changed.notify_all()

    def wait_for(self, name: str, timeout: float) -> dict[str, Any]:
        """The fields of event ``name`` once it has come; raises ClientFailed otherwise."""
        with self._changed:
            seen = self._changed.wait_for(
                lambda: name in self._events or self.process.poll() is not None, timeout
            )
            if name in self._events:
                return self._events[name]
        state = "exited" if seen else f"sent no {name!r} within {timeout:.0f}s"
        raise ClientFailed(f"load client {state}: {self._tail()}")

    def result(self) -> dict[str, Any]:
        """Close its stdin (ends idle mode), wait for it, and return its document."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        try:
            self.process.wait(self.load.deadline())
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise ClientFailed(
                f"load client did not finish within {self.load.deadline():.0f}s"
            ) from None
        self._reader.join(5)
        output = self.process.stdout.read()
        if self.process.returncode != 0:
            raise ClientFailed(f"load client exited with {self.process.returncode}: {self._tail()}")
        try:
            document: dict[str, Any] = json.loads(output)
        except ValueError:
            raise ClientFailed(f"load client printed no JSON: {output[:200]!r}") from None
        return document

    def _tail(self) -> str:
        return " | ".join(self.diagnostics[-5:]) or "(nothing on stderr)"

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)  # it ends at the end of stderr, which came with the exit
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def run(load: Load, on_event: EventHandler | None = None) -> dict[str, Any]:
    """Run a closed- or open-loop load to its end; the client's document."""
    with LoadClient(load, on_event) as client:
        return client.result()
