"""Durable by default: real `chatbuddy serve` processes on a real SQLite file, stopped
with SIGTERM and killed with SIGKILL mid-burst, then counted."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tornado.websocket import WebSocketClosedError

from chatbuddy.engine.store import DEDUP_WINDOW
from chatbuddy.errors import ClientFailure
from tests.helpers import TIMEOUT, ChatClient, eventually
from tests.processes import LiveServer, serve_env, start_server

#: Messages a tab keeps waiting for an answer (under the server's 32 per session).
WINDOW = 8
#: Tabs sending at once, each in its own session.
SESSIONS = 4
#: Messages a tab sends at most: resending them all must find every one in the
#: session's dedup window (a SIGTERM lets the server answer for seconds more).
MOST = DEDUP_WINDOW - 100


class Files:
    """One SQLite file, and servers started on it one after another."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.database = folder / "chat.db"
        self.env = serve_env(folder)

    def start(self, *args: str) -> LiveServer:
        return start_server(
            self.env,
            "--agent", "echo",
            # The tabs send as fast as replies come, all from 127.0.0.1: no budgets.
            "--rate-limit", "0", "--session-rate-limit", "0", "--ip-rate-limit", "0",
            "--frame-rate-limit", "0", "--new-sessions-per-minute", "0",
            "--history-limit", "100000",
            "--store", f"sqlite:{self.database}",
            *args,
            log=self.folder / "server.log",
        )  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


async def history(client: ChatClient) -> list[dict[str, Any]]:
    """Every stored message of the connection's session, page by page."""
    messages: list[dict[str, Any]] = []
    after = 0
    while True:
        await client.send(type="history", after=after, limit=200)
        data = (await client.expect("history"))["data"]
        messages += data["messages"]
        if not data["has_more"]:
            return messages
        after = messages[-1]["id"]


@dataclass
class Burst:
    """One tab sending numbered messages, WINDOW at a time, until the server goes."""

    session_id: str
    client: ChatClient
    token: str
    sent: int = 0
    #: chat_response data received: every one acknowledges a message and its reply.
    acknowledged: list[dict[str, Any]] = field(default_factory=list)

    def key(self, n: int) -> str:
        return f"{self.session_id}-{n}"

    async def run(self) -> None:
        waiting = 0
        try:
            while True:
                while waiting < WINDOW and self.sent < MOST:
                    await self.client.send(
                        type="chat_message",
                        session_id=self.session_id,
                        content=f"message {self.sent}",
                        client_message_id=self.key(self.sent),
                    )
                    self.sent += 1
                    waiting += 1
                frame = await self.client.receive()
                if frame["type"] == "chat_response":
                    self.acknowledged.append(frame["data"])
                    waiting -= 1
                elif frame["type"] == "error":
                    waiting -= 1
        except (TimeoutError, ClientFailure, OSError, WebSocketClosedError):
            return  # the server went away mid-burst, as intended


async def burst_then(files: Files, stop: signal.Signals) -> list[Burst]:
    """Tabs in SESSIONS sessions send as fast as answers come; once 100 answers have
    come, the server gets ``stop``. Returns the tabs' records."""
    server = files.start()
    bursts = []
    for n in range(SESSIONS):
        sid = f"burst-{n}"
        client = await ChatClient.open(server.port, sid, user_id=f"user-{n}")
        bursts.append(Burst(sid, client, (await client.greeting())["session_token"]))
    tasks = [asyncio.create_task(burst.run()) for burst in bursts]
    await eventually(lambda: sum(len(b.acknowledged) for b in bursts) >= 100, "100 answers")
    await asyncio.to_thread(server.stop, stop)
    await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    return bursts


async def check_everything_acknowledged_is_kept_once(files: Files, bursts: list[Burst]) -> None:
    """After a restart: every acknowledged message and reply is there; resending every
    message sent stores none twice, and stores the ones that were lost."""
    server = files.start()
    try:
        for burst in bursts:
            client = await ChatClient.open(server.port, burst.session_id, session_token=burst.token)
            greeting = await client.greeting()
            assert greeting["resumed"] is True
            kept = {m["id"]: m for m in await history(client)}
            for reply in burst.acknowledged:
                assert kept[reply["message_id"]]["content"] == reply["content"]
                asked = kept[reply["in_reply_to"]]
                assert asked["role"] == "user"
                assert asked["content"] == reply["content"]
            assert greeting["last_message_id"] == max(kept)

            await resend_everything(client, burst)
            messages = await history(client)
            keys = Counter(m.get("client_message_id") for m in messages if m["role"] == "user")
            assert keys == Counter(burst.key(n) for n in range(burst.sent))
            client.close()
    finally:
        server.stop()


async def resend_everything(client: ChatClient, burst: Burst) -> None:
    """Send every message again, WINDOW at a time; wait for every answer."""
    answered = 0
    for n in range(burst.sent):
        await client.send(
            type="chat_message",
            session_id=burst.session_id,
            content=f"message {n}",
            client_message_id=burst.key(n),
        )
        if n >= WINDOW:
            await answer(client)
            answered += 1
    while answered < burst.sent:
        await answer(client)
        answered += 1


async def answer(client: ChatClient) -> None:
    frame = await client.receive()
    assert frame["type"] in ("chat_response", "error"), frame
    if frame["type"] == "error":
        assert frame["data"]["error_type"] == "duplicate_message", frame


async def test_a_server_killed_mid_burst_keeps_every_acknowledged_message_once(
    files: Files,
) -> None:
    bursts = await burst_then(files, signal.SIGKILL)
    assert all(burst.sent > len(burst.acknowledged) for burst in bursts)  # some were in flight
    await check_everything_acknowledged_is_kept_once(files, bursts)


async def test_a_server_stopped_mid_burst_keeps_every_acknowledged_message_once(
    files: Files,
) -> None:
    bursts = await burst_then(files, signal.SIGTERM)
    await check_everything_acknowledged_is_kept_once(files, bursts)


async def test_after_a_crash_a_tab_resumes_with_exactly_its_history(files: Files) -> None:
    server = files.start()
    client = await ChatClient.open(server.port, "resume-me", user_id="anna")
    token = (await client.greeting())["session_token"]
    first = await client.chat("resume-me", "one", client_message_id="c-1")
    await client.chat("resume-me", "two", client_message_id="c-2")
    before = await history(client)
    server.stop(signal.SIGKILL)

    server = files.start()
    try:
        again = await ChatClient.open(server.port, "resume-me", session_token=token)
        greeting = await again.greeting()
        assert (greeting["resumed"], greeting["user_id"]) == (True, "anna")
        assert greeting["last_message_id"] == before[-1]["id"]
        assert await history(again) == before
        # "history after" continues where the tab left off, across the restart.
        await again.send(type="history", after=first["message_id"], limit=200)
        after = (await again.expect("history"))["data"]["messages"]
        assert after == before[2:]
        # A message resent after the restart is answered with its stored reply.
        await again.send(type="chat_message", session_id="resume-me", content="one",
                         client_message_id="c-1")  # fmt: skip
        _, resent = await again.reply()
        assert resent["message_id"] == first["message_id"]
        assert await history(again) == before
        # New messages carry on from the last id.
        fresh = await again.chat("resume-me", "three")
        assert fresh["in_reply_to"] == before[-1]["id"] + 1
    finally:
        server.stop()


async def test_two_tabs_of_a_session_carry_on_together_after_a_restart(files: Files) -> None:
    server = files.start()
    one = await ChatClient.open(server.port, "two-tabs", user_id="anna")
    token = (await one.greeting())["session_token"]
    two = await ChatClient.open(server.port, "two-tabs", session_token=token)
    await two.greeting()
    await one.chat("two-tabs", "before")
    await two.expect("user_message")
    await two.expect("chat_response")
    server.stop(signal.SIGTERM)
    assert await one.closed() == 1001
    assert await two.closed() == 1001

    server = files.start()
    try:
        tabs = [await ChatClient.open(server.port, "two-tabs", session_token=token) for _ in "ab"]
        greetings = [await tab.greeting() for tab in tabs]
        assert [g["resumed"] for g in greetings] == [True, True]
        await tabs[0].send(type="chat_message", session_id="two-tabs", content="after")
        seen = (await tabs[1].expect("user_message"))["data"]
        assert seen["content"] == "after"
        _, reply = await tabs[0].reply()
        _, reply_elsewhere = await tabs[1].reply()
        assert reply == reply_elsewhere
        contents = [[m["content"] for m in await history(tab)] for tab in tabs]
        assert contents[0] == contents[1] == ["before", "before", "after", "after"]
    finally:
        server.stop()


async def test_the_server_refuses_a_second_process_on_the_same_file(files: Files) -> None:
    server = files.start()
    try:
        second = await asyncio.create_subprocess_exec(
            *serve_command(files), "--port", "0",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=files.env,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(second.communicate(), 4 * TIMEOUT)
        assert second.returncode == 3
        line = stderr.decode().strip()
        assert line == (
            f"Error: {files.database} is in use by another ChatBuddy (pid {server.process.pid}); "
            "one file serves one process: stop that server or choose another --store sqlite:PATH"
        )
    finally:
        server.stop()


def serve_command(files: Files) -> list[str]:
    import sys

    return [sys.executable, "-m", "chatbuddy", "serve", "--store", f"sqlite:{files.database}"]
