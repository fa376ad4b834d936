"""An operator at the terminal: `chatbuddy takeover`, `say`, `release` and
`sessions --waiting` as real processes against a real server, a customer on a socket."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from rich.console import Console

from chatbuddy.cli.tail_printer import TailPrinter  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.cli.takeover import OperatorConsole  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.client.admin import AdminClient
from tests.helpers import TIMEOUT, ChatClient
from tests.processes import LiveServer, serve_env, start_server
from tests.redis_server import RedisServer, free_port

#: A grace short enough to wait for, for the test of a console that vanished.
GRACE = "2s"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    runtime = tmp_path_factory.mktemp("runtime")
    live = start_server(serve_env(runtime), "--agent", "echo", log=runtime / "log")
    yield live
    live.stop()


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose operators' holds last GRACE after their last sign of life."""
    live = start_server(
        serve_env(tmp_path), "--agent", "echo", "--operator-grace", GRACE, log=tmp_path / "log"
    )
    yield live
    live.stop()


def cli(
    server: LiveServer, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatbuddy", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**server.env, "CHATBUDDY_URL": server.url},
        timeout=4 * TIMEOUT,
    )


async def acli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, server, *args)


async def customer(server: LiveServer, session_id: str) -> ChatClient:
    client = await ChatClient.open(server.port, session_id, user_id="anna")
    await client.greeting()
    return client


async def frame_of(client: ChatClient, kind: str) -> dict[str, Any]:
    while True:
        frame = await client.receive()
        if frame["type"] == kind:
            data: dict[str, Any] = frame["data"]
            return data


class ConsoleProcess:
    """A running `chatbuddy takeover`, typed into line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[str] = []
        # What it said on stderr so far (read by notice()).
        self.said: list[str] = []
        self.errors = ""

    @classmethod
    async def start(
        cls, server: LiveServer, session_id: str, *args: str, url: str | None = None
    ) -> ConsoleProcess:
        """The console of ``server`` (through ``url``, if given, with the server's token)."""
        env = dict(server.env)
        if url is not None:  # the token file is the server's port's, not the url's
            runtime = Path(env["CHATBUDDY_RUNTIME_DIR"])
            token = (runtime / f"admin-{server.port}.token").read_text().strip()
            env["CHATBUDDY_ADMIN_TOKEN"] = token
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chatbuddy", "takeover", session_id,
            "--url", url or server.url, *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )  # fmt: skip
        return cls(process)

    async def line_with(self, text: str) -> str:
        assert self.process.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.process.stdout.readline(), 2 * TIMEOUT)
            assert raw, f"the console ended before printing {text!r}: {self.seen}"
            self.seen.append(raw.decode())
            if text in self.seen[-1]:
                return self.seen[-1]

    async def notice(self, text: str) -> str:
        """The next line on stderr (the console's own remarks) that holds ``text``."""
        assert self.process.stderr is not None
        while True:
            raw = await asyncio.wait_for(self.process.stderr.readline(), 3 * TIMEOUT)
            assert raw, f"the console ended before saying {text!r}: {self.said}"
            self.said.append(raw.decode())
            if text in raw.decode():
                return raw.decode()

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((line + "\n").encode())
        await self.process.stdin.drain()

    async def end_input(self) -> int:
        """Ctrl-D; the exit code (stderr is kept in ``errors``)."""
        assert self.process.stdin is not None
        assert self.process.stderr is not None
        self.process.stdin.close()
        code = await asyncio.wait_for(self.process.wait(), 2 * TIMEOUT)
        self.errors = (await self.process.stderr.read()).decode()
        return code


async def test_the_console_shows_the_conversation_then_talks_for_the_operator_until_ctrl_d(
    server: LiveServer,
) -> None:
    anna = await customer(server, "console")
    await anna.chat("console", "my parcel is late")
    console = await ConsoleProcess.start(server, "console", "--as", "Kiss Éva")
    assert (await frame_of(anna, "operator_joined"))["operator"] == "Kiss Éva"
    assert "anna: my parcel is late" in await console.line_with("my parcel is late")

    await anna.send(type="chat_message", session_id="console", content="hello? a human?")
    frame = await anna.receive()
    while frame["type"] == "read":  # the console's read mark of what it showed first
        frame = await anna.receive()
    assert frame["type"] == "user_message"  # stored; the assistant stays silent
    stored = frame["data"]
    assert "hello? a human?" in await console.line_with("a human?")
    read = await frame_of(anna, "read")  # the console marks what it showed as read
    while read["message_id"] < stored["id"]:
        read = await frame_of(anna, "read")
    assert read == {"reader": "operator", "message_id": stored["id"], "name": "Kiss Éva"}
    await anna.send(type="typing", state="start")
    await console.line_with("the customer is typing")

    await console.type("Hi, Éva here. Let me look at your parcel.")
    said = await frame_of(anna, "operator_message")
    assert said == {**said, "role": "operator", "name": "Kiss Éva"}
    assert said["content"] == "Hi, Éva here. Let me look at your parcel."

    await console.type("/note refund approved, parcel lost by the courier")
    await console.line_with("(internal): refund approved")
    shown = await acli(server, "sessions", "show", "console")
    assert "note by Kiss Éva: refund approved" in shown.stdout

    assert await console.end_input() == 0, console.errors  # Ctrl-D gives it back
    assert "Released: the assistant answers again." in console.errors
    assert await frame_of(anna, "operator_left") == {"operator": "Kiss Éva", "reason": "released"}
    assert (await anna.chat("console", "thanks"))["content"] == "thanks"  # the bot again
    await anna.send(type="history")
    history = json.dumps(await frame_of(anna, "history"))
    assert "refund approved" not in history  # a note never reaches the customer
    anna.close()


async def test_a_second_operator_is_refused_with_exit_code_7_and_told_who_holds_it(
    server: LiveServer,
) -> None:
    anna = await customer(server, "contested")
    first = await acli(server, "say", "contested", "Anna here", "--as", "Anna")
    assert first.returncode == 0, first.stderr
    for args in (
        ("takeover", "contested"),
        ("say", "contested", "me too"),
        ("release", "contested"),
    ):
        refused = await acli(server, *args, "--as", "Bob")
        assert refused.returncode == 7, refused.stderr
        assert "Anna holds session 'contested'" in refused.stderr
        assert "Traceback" not in refused.stderr
    forced = await acli(server, "release", "contested", "--force")
    assert forced.returncode == 0
    assert "released contested (held by Anna)" in forced.stdout
    anna.close()


async def test_say_and_release_are_for_scripts(server: LiveServer) -> None:
    anna = await customer(server, "scripted")
    said = await acli(
        server, "say", "scripted", "Your refund is on its way.", "--as", "Anna", "--json"
    )
    assert said.returncode == 0, said.stderr
    message = json.loads(said.stdout)
    assert (message["role"], message["name"], message["content"]) == (
        "operator",
        "Anna",
        "Your refund is on its way.",
    )
    assert (await frame_of(anna, "operator_message"))["id"] == message["id"]
    released = await acli(server, "release", "scripted", "--as", "Anna", "--json")
    assert json.loads(released.stdout)["released"]["operator"] == "Anna"
    again = await acli(server, "release", "scripted", "--as", "Anna")
    assert "nobody held scripted" in again.stdout
    anna.close()


async def test_sessions_waiting_lists_who_asked_for_a_person_longest_waiting_first(
    server: LiveServer,
) -> None:
    first = await customer(server, "waits-longest")
    await first.send(type="handoff_request")
    await frame_of(first, "handoff_pending")
    second = await customer(server, "waits-too")
    await second.send(type="handoff_request")
    await frame_of(second, "handoff_pending")
    table = await acli(server, "sessions", "--waiting")
    assert table.returncode == 0, table.stderr
    assert "Waiting for a person" in table.stdout
    rows = [line for line in table.stdout.splitlines() if "waits-" in line]
    assert [row.split()[0] for row in rows] == ["waits-longest", "waits-too"]
    await acli(server, "say", "waits-longest", "Hello!", "--as", "Anna")
    listed = json.loads((await acli(server, "sessions", "--waiting", "--json")).stdout)
    assert [w["session_id"] for w in listed["waiting"]] == ["waits-too"]
    await acli(server, "release", "waits-longest", "--force")
    first.close()
    second.close()


async def test_a_console_that_dies_keeps_the_hold_for_the_grace_then_the_bot_is_back(
    impatient: LiveServer,
) -> None:
    server = impatient
    anna = await customer(server, "abandoned")
    console = await ConsoleProcess.start(server, "abandoned", "--as", "Anna")
    await frame_of(anna, "operator_joined")
    console.process.send_signal(signal.SIGKILL)
    await console.process.wait()
    await anna.send(type="chat_message", session_id="abandoned", content="hello?")
    await anna.expect("user_message")  # still held: no reply
    left = await frame_of(anna, "operator_left")  # GRACE later, the bot says it is back
    assert left == {"operator": "Anna", "reason": "timeout"}
    assert (await anna.chat("abandoned", "anyone?"))["content"] == "anyone?"
    anna.close()


async def test_the_console_outlives_a_server_restart_and_keeps_the_conversation(
    tmp_path: Path,
) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    env, port = serve_env(tmp_path / "runtime"), free_port()
    args = ("--agent", "echo", "--redis-url", redis.url)
    first = start_server(env, *args, port=port, log=tmp_path / "log")
    second: LiveServer | None = None
    try:
        anna = await ChatClient.open(first.port, "restarted", user_id="anna")
        token = (await anna.greeting())["session_token"]
        console = await ConsoleProcess.start(first, "restarted", "--as", "Anna")
        await frame_of(anna, "operator_joined")
        await console.notice("You hold the conversation")  # it shows what happens now
        await asyncio.to_thread(first.stop)
        await console.notice("lost the connection")

        second = start_server(env, *args, port=port, log=tmp_path / "log")
        await console.notice("Reconnected; you still hold the conversation.")
        anna = await ChatClient.open(second.port, "restarted", session_token=token)
        await anna.greeting()
        assert (await frame_of(anna, "operator_joined"))["operator"] == "Anna"  # still held
        await anna.send(type="chat_message", session_id="restarted", content="still there?")
        assert "still there?" in await console.line_with("still there?")
        await console.type("Yes, still here.")
        frames = [await anna.receive()]
        while frames[-1]["type"] != "operator_message":
            frames.append(await anna.receive())
        assert frames[-1]["data"]["content"] == "Yes, still here."
        assert "chat_response" not in [f["type"] for f in frames]  # the assistant was silent
        assert await console.end_input() == 0, console.errors
        anna.close()
    finally:
        for node in (first, second):
            if node is not None:
                await asyncio.to_thread(node.stop)
        redis.stop()


async def test_after_a_network_blip_the_console_shows_what_it_missed_once(
    server: LiveServer,
) -> None:
    anna = await customer(server, "blip")
    async with Blip(server.port) as blip:
        console = await ConsoleProcess.start(
            server, "blip", "--as", "Anna", url=f"http://127.0.0.1:{blip.port}"
        )
        await console.notice("You hold the conversation")
        await frame_of(anna, "operator_joined")
        await anna.send(type="chat_message", session_id="blip", content="before the blip")
        await console.line_with("before the blip")
        blip.down()
        await console.notice("lost the connection")
        # Said while the console cannot hear: no event stream carries it to the console.
        await anna.send(type="chat_message", session_id="blip", content="anyone there?")
        await frame_of(anna, "user_message")
        blip.up()
        await console.notice("Reconnected; you still hold the conversation.")
        assert "anna: anyone there?" in await console.line_with("anyone there?")
        await anna.send(type="chat_message", session_id="blip", content="after the blip")
        await console.line_with("after the blip")
        assert await console.end_input() == 0, console.errors
    shown = "".join(console.seen)
    assert (shown.count("before the blip"), shown.count("anyone there?")) == (1, 1)
    anna.close()


class Blip:
    """A TCP proxy in front of a server whose connections can be cut: down() drops
    every connection and refuses new ones until up()."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._up = True
        self._pipes: set[asyncio.StreamWriter] = set()
        self._listener: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Blip:
        self._listener = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._listener.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.down()
        assert self._listener is not None
        self._listener.close()
        await self._listener.wait_closed()

    def down(self) -> None:
        self._up = False
        for writer in self._pipes:
            writer.transport.abort()
        self._pipes.clear()

    def up(self) -> None:
        self._up = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._up:
            writer.transport.abort()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self._target_port
        )
        self._pipes.update((writer, upstream_writer))
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()


def test_every_operator_command_explains_itself(server: LiveServer) -> None:
    for args in (["takeover"], ["say"], ["release"], ["sessions"]):
        shown = cli(server, *args, "--help")
        assert shown.returncode == 0
        assert "Examples:" in shown.stdout
        assert "--json" in shown.stdout or args == ["takeover"]


def test_a_slow_reply_overtaken_by_the_operators_message_is_still_shown() -> None:
    from chatbuddy.wire.events import (
        OperatorMessageEvent,
        ReplyChunkEvent,
        ReplyDoneEvent,
        UserMessageEvent,
    )

    console = OperatorConsole(cast(AdminClient, None), "s1", "Anna", grace=30.0)
    shown = io.StringIO()
    console._out = Console(file=shown, width=200)
    console._printer = TailPrinter(console._out, notices=Console(file=io.StringIO()))
    now = datetime.now(UTC)
    for event in (
        UserMessageEvent(session_id="s1", timestamp=now, message_id=1, content="a question"),
        OperatorMessageEvent(
            session_id="s1", timestamp=now, message_id=3, operator="Anna", content="hello"
        ),
        ReplyChunkEvent(session_id="s1", timestamp=now, message_id=2, index=0, delta="the slow "),
        ReplyDoneEvent(
            session_id="s1",
            timestamp=now,
            message_id=2,
            in_reply_to=1,
            agent="llm",
            confidence=0.5,
            processing_time=3.0,
            content="the slow answer",
        ),
        UserMessageEvent(session_id="s1", timestamp=now, message_id=1, content="a question"),
    ):
        console._show(event.model_dump(mode="json"))
    text = shown.getvalue()
    assert "the slow" in text
    assert (text.count("a question"), text.count("hello")) == (1, 1)  # each shown once
