"""`chatbuddy serve --workers N`: processes sharing one port act as one server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.errors import EXIT_CONFIG
from tests.helpers import TIMEOUT, ChatClient, eventually
from tests.processes import LiveServer, serve_env, start_server
from tests.redis_server import RedisServer


def chat_sockets(pid: int, port: int) -> int:
    """How many of the process's sockets are connections accepted on ``port``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    accepted = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
            accepted += local_port == port and state == "01" and inode in inodes
    return accepted


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def worker_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return sorted(int(pid) for pid in children)


@pytest.fixture
def workers(own_redis: RedisServer, tmp_path: Path) -> Iterator[LiveServer]:
    env = serve_env(tmp_path / "runtime")
    server = start_server(env, "--workers", "2", "--redis-url", own_redis.url, "--agent", "echo")
    yield server
    server.stop()


async def test_connections_are_spread_over_the_workers_and_tabs_hear_each_other(
    workers: LiveServer,
) -> None:
    pids = worker_pids(workers.process.pid)
    assert len(pids) == 2
    sessions = [f"spread-{n}" for n in range(8)]
    tabs: dict[str, list[ChatClient]] = {}
    for sid in sessions:
        first = await ChatClient.open(workers.port, sid)
        token = (await first.greeting())["session_token"]
        tabs[sid] = [first]
        for _ in range(2):
            tab = await ChatClient.open(workers.port, sid, session_token=token)
            await tab.greeting()
            tabs[sid].append(tab)
    await eventually(
        lambda: sum(chat_sockets(pid, workers.port) for pid in pids) == 24,
        "24 chat sockets held by the workers",
    )
    assert all(chat_sockets(pid, workers.port) > 0 for pid in pids)
    # Whichever worker holds a tab, every tab of the session hears the message and reply.
    for sid, (first, *others) in tabs.items():
        assert (await first.chat(sid, "hello from the first tab"))["content"]
        for tab in others:
            assert (await tab.expect("user_message"))["data"]["content"] == (
                "hello from the first tab"
            )
            assert (await tab.expect("chat_response"))["data"]["content"]
    for clients in tabs.values():
        for tab in clients:
            tab.close()


async def test_a_worker_that_dies_is_started_again(workers: LiveServer) -> None:
    first, second = worker_pids(workers.process.pid)
    os.kill(first, signal.SIGKILL)
    await eventually(
        lambda: (
            len(worker_pids(workers.process.pid)) == 2
            and first not in worker_pids(workers.process.pid)
        ),
        "a new worker",
    )
    assert second in worker_pids(workers.process.pid)
    for n in range(6):  # whichever worker takes them, chats work
        client = await ChatClient.open(workers.port, f"after-{n}")
        await client.greeting()
        client.close()


def test_sigterm_stops_every_worker_and_removes_the_token_file(workers: LiveServer) -> None:
    pids = worker_pids(workers.process.pid)
    token_file = Path(workers.env["CHATBUDDY_RUNTIME_DIR"]) / f"admin-{workers.port}.token"
    assert token_file.exists()
    assert workers.stop() == 0
    assert not token_file.exists()
    for pid in pids:
        assert not alive(pid)


def test_workers_without_redis_are_refused_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chatbuddy", "serve", "--workers", "2", "--port", "0"],
        env=serve_env(tmp_path / "runtime"),
        capture_output=True,
        text=True,
        timeout=4 * TIMEOUT,
    )
    assert done.returncode == EXIT_CONFIG
    assert "--workers needs --redis-url" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def workers_with_a_metrics_port(
    own_redis: RedisServer, tmp_path: Path, unused_tcp_port: int
) -> Iterator[tuple[LiveServer, int]]:
    env = serve_env(tmp_path / "runtime")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the parent makes the workers' folder
    args = ["--workers", "2", "--redis-url", own_redis.url, "--agent", "echo"]
    server = start_server(env, *args, "--metrics-port", str(unused_tcp_port))
    yield server, unused_tcp_port
    server.stop()


async def test_the_metrics_add_up_every_workers_and_forget_a_dead_workers_connections(
    workers_with_a_metrics_port: tuple[LiveServer, int],
) -> None:
    from prometheus_client.parser import text_string_to_metric_families
    from tornado.httpclient import AsyncHTTPClient

    server, metrics_port = workers_with_a_metrics_port

    async def value(name: str, **labels: str) -> float:
        body = (await AsyncHTTPClient().fetch(f"http://127.0.0.1:{metrics_port}/metrics")).body
        return sum(
            sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    pids = worker_pids(server.process.pid)
    tabs = []
    for n in range(12):
        tab = await ChatClient.open(server.port, f"metered-{n}")
        await tab.greeting()
        await tab.chat(f"metered-{n}", "hello")
        tabs.append(tab)
    held = {pid: chat_sockets(pid, server.port) for pid in pids}
    assert all(held.values()), held  # both workers hold some
    # Whichever worker answers the scrape counts every worker's.
    for _ in range(4):
        assert await value("chatbuddy_messages_received_total", transport="websocket") == 12
        assert await value("chatbuddy_connections") == 12

    victim = pids[0]
    os.kill(victim, signal.SIGKILL)
    left = 12 - held[victim]

    async def connections_after_the_death() -> float | None:
        try:
            return await value("chatbuddy_connections")
        except ConnectionResetError:  # the kernel gave the scrape to the dying worker's socket
            return None

    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while (counted := await connections_after_the_death()) != left:  # the parent reaps it
        assert asyncio.get_running_loop().time() < deadline, f"{counted} connections, not {left}"
        await asyncio.sleep(0.05)
    # Totals keep what the dead worker counted.
    assert await value("chatbuddy_messages_received_total", transport="websocket") == 12
    for tab in tabs:
        tab.close()
