"""Start ``chatbuddy serve`` as a child process and learn where it listens.

The server says where it listens in a JSON ready file (``--ready-file``), not
in the banner printed for people, so no caller parses prose.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


class LaunchFailed(RuntimeError):
    """The server exited, or never said it was ready, before the deadline."""


@dataclass
class ServerProcess:
    """A running ``chatbuddy serve`` and what its ready file said."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    admin_token_file: Path
    #: ``--workers N``: the worker processes' pids (the process above is their parent).
    workers: tuple[int, ...] = ()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :]

    def admin_token(self) -> str:
        return self.admin_token_file.read_text(encoding="utf-8").strip()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``signum`` (if still running) and wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)


def launch_server(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
    stdout: IO[Any] | int | None = subprocess.DEVNULL,
    stderr: IO[Any] | int | None = subprocess.DEVNULL,
    command: Sequence[str] | None = None,
    cwd: Path | None = None,
) -> ServerProcess:
    """Run ``chatbuddy serve ARGS`` (``--port 0`` unless ARGS say otherwise); return
    once it listens. Raises :class:`LaunchFailed` if it exits or takes too long.

    ``command`` replaces ``python -m chatbuddy serve`` (e.g. another install's
    ``chatbuddy serve``).
    """
    folder = Path(tempfile.mkdtemp(prefix="chatbuddy-launch-"))
    ready = folder / "ready.json"
    argv = [*(command or [sys.executable, "-m", "chatbuddy", "serve"]), "--ready-file", str(ready)]
    if "--port" not in args:
        argv += ["--port", "0"]
    process = subprocess.Popen(  # noqa: S603 - our own program and arguments
        [*argv, *args],
        env=env if env is not None else dict(os.environ),
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
    )
    try:
        document = _wait_for(ready, process, timeout)
    finally:
        with contextlib.suppress(OSError):
            ready.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()
    return ServerProcess(
        process=process,
        url=str(document["url"]).rstrip("/"),
        port=int(document["port"]),
        admin_token_file=Path(document["admin_token_file"]),
        workers=tuple(int(pid) for pid in document.get("workers", ())),
    )


def _wait_for(ready: Path, process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        code = process.poll()
        if code is not None:
            raise LaunchFailed(f"chatbuddy serve exited with code {code} before it was ready")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise LaunchFailed(f"chatbuddy serve was not ready within {timeout:.0f}s")
        time.sleep(0.02)  # a child process starting; bounded by the deadline above
    document: dict[str, Any] = json.loads(ready.read_text(encoding="utf-8"))
    return document
