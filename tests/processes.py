"""`chatbuddy serve` as a real process, for tests that need one (or several)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from chatbuddy.client.launcher import launch_server
from tests.helpers import TIMEOUT


def serve_env(runtime_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for servers and CLI runs of one test: its own token folder, and
    its own data folder (the default SQLite file goes there, never to the user's)."""
    env = {
        **os.environ,
        "CHATBUDDY_RUNTIME_DIR": str(runtime_dir),
        "XDG_DATA_HOME": str(runtime_dir / "data"),
        "COLUMNS": "120",
        **extra,
    }
    if "CHATBUDDY_ADMIN_TOKEN" not in extra:
        env.pop("CHATBUDDY_ADMIN_TOKEN", None)
    return env


@dataclass
class LiveServer:
    """A running `chatbuddy serve`."""

    url: str
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(TIMEOUT)

    async def get(self, path: str, token: str | None = None) -> HTTPResponse:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response: HTTPResponse = await AsyncHTTPClient().fetch(
            self.url + path, headers=headers, raise_error=False
        )
        return response

    async def stats(self, token: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            (await self.get("/api/v1/websocket/stats", token)).body
        )
        return document


def start_server(
    env: dict[str, str], *args: str, port: int = 0, log: Path | None = None
) -> LiveServer:
    """Start `chatbuddy serve` and wait until it listens (its ready file says where)."""
    server = launch_server(
        "--port",
        str(port),
        *args,
        env=env,
        timeout=4 * TIMEOUT,
        stderr=log.open("a") if log else subprocess.DEVNULL,
    )
    return LiveServer(server.url, server.port, env, server.process)
