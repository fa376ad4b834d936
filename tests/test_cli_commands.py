"""The admin commands end to end: real `chatbuddy` processes against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import chatbuddy
from tests.helpers import TIMEOUT, ChatClient
from tests.processes import LiveServer, serve_env, start_server
from tests.redis_server import free_port


def stop(server: LiveServer) -> None:
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module, with its own runtime folder for the token file."""
    runtime = tmp_path_factory.mktemp("runtime")
    live = start_server(serve_env(runtime), log=runtime / "server.log")
    yield live
    stop(live)


def cli(
    server: LiveServer, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatbuddy", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**server.env, "CHATBUDDY_URL": server.url, **env},
        timeout=4 * TIMEOUT,
    )


# -- send ----------------------------------------------------------------------


def test_send_prints_the_reply_with_agent_confidence_and_round_trip(server: LiveServer) -> None:
    result = cli(server, "send", "Mennyi az ára a Samsung Galaxy S24-nek?")
    assert result.returncode == 0, result.stderr
    assert "A Samsung Galaxy S24 ára 349\u202f990\u202fFt" in result.stdout
    # Who answered and how fast is about the reply, not the reply: stderr, so a pipe gets text.
    assert re.search(r"— product · confidence 0\.95 · [\d.]+ ms round trip", result.stderr)
    assert "round trip" not in result.stdout
    assert re.search(r"session cli-[0-9a-f]{8} \(new\)", result.stderr)


def test_send_json_prints_the_reply_as_one_json_line(server: LiveServer) -> None:
    result = cli(server, "send", "--json", "--session", "send-json", "Hol tart a 10042 rendelésem?")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    document = json.loads(line)
    assert document["session_id"] == "send-json"
    assert "#10042" in document["reply"]["content"]
    assert document["reply"]["metadata"]["agent"] == "order"
    assert document["round_trip_ms"] > 0


def test_send_repeat_json_prints_the_latency_summary(server: LiveServer) -> None:
    result = cli(server, "send", "--json", "--repeat", "5", "hello")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["ok"], summary["failed"]) == (5, 5, 0)
    assert 0 < summary["min_ms"] <= summary["median_ms"] <= summary["p90_ms"] <= summary["max_ms"]


def test_send_json_and_a_prompt_do_not_mix(server: LiveServer) -> None:
    result = cli(server, "send", "--json", "-i")
    assert result.returncode == 2
    assert "--json prints data for scripts" in result.stderr


def test_send_can_continue_a_session_it_made(server: LiveServer) -> None:
    first = cli(server, "send", "--user", "anna", "Szia!")
    match = re.search(r"--session (\S+) --session-token (\S+)", first.stderr)
    assert match is not None, first.stderr
    again = cli(
        server,
        "send",
        "--session",
        match.group(1),
        "--session-token",
        match.group(2),
        "Hol tart a 10042 rendelésem?",
    )
    assert again.returncode == 0, again.stderr
    assert "(resumed)" in again.stderr
    assert "#10042" in again.stdout
    shown = cli(server, "sessions", "show", match.group(1))
    assert "anna: Szia!" in shown.stdout
    assert "order: A #10042 számú rendelés" in shown.stdout


def test_send_repeat_prints_a_latency_summary(server: LiveServer) -> None:
    result = cli(server, "send", "--repeat", "25", "hello")
    assert result.returncode == 0, result.stderr
    assert "25/25" in result.stdout
    assert "Round trips" in result.stdout
    summary = result.stdout.strip().splitlines()[-1].split()
    assert summary[:3] == ["25", "25", "0"]  # sent, ok, failed: the rate limit was waited out


def test_send_interactive_is_a_chat_prompt(server: LiveServer) -> None:
    result = cli(server, "send", "-i", stdin="Do you have coupons?\n\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "you> bot> Our current coupons:" in result.stdout
    assert "BLACKFRIDAY20" in result.stdout


def test_send_to_someone_elses_session_is_refused(server: LiveServer) -> None:
    cli(server, "send", "--session", "taken-session", "mine")
    result = cli(server, "send", "--session", "taken-session", "let me in")
    assert result.returncode == 5
    assert "reconnect with its session_token" in result.stderr


# -- stats and sessions --------------------------------------------------------


async def test_stats_show_a_connected_clients_session(server: LiveServer) -> None:
    client = await ChatClient.open(server.port, "stats-visible", user_id="stats-user")
    await client.greeting()
    await client.chat("stats-visible", "hello")
    result = await asyncio.to_thread(cli, server, "stats")
    client.close()
    assert result.returncode == 0, result.stderr
    for expected in ("connections", "messages in", "stats-visible", "stats-user", "Users"):
        assert expected in result.stdout
    doc = json.loads((await asyncio.to_thread(cli, server, "stats", "--json")).stdout)
    assert "websocket_stats" in doc


async def test_stats_show_the_share_of_thumbs_up_per_agent_and_route(server: LiveServer) -> None:
    client = await ChatClient.open(server.port, "reacting", user_id="anna")
    await client.greeting()
    price = await client.chat("reacting", "Mennyi az ára a Samsung Galaxy S24-nek?")
    order = await client.chat("reacting", "Hol tart a 10042 rendelésem?")
    await client.send(type="reaction", message_id=price["message_id"], reaction="up")
    await client.send(type="reaction", message_id=order["message_id"], reaction="down")
    await client.send(type="history")
    messages = (await client.expect("history"))["data"]["messages"]
    assert [m.get("reaction") for m in messages if m["role"] == "assistant"] == ["up", "down"]
    client.close()

    shown = await asyncio.to_thread(cli, server, "stats")
    assert shown.returncode == 0, shown.stderr
    assert "Reactions to replies" in shown.stdout
    rows = [line.split() for line in shown.stdout.splitlines() if "coordinator" in line]
    assert ["coordinator", "product", "1", "0", "100%"] in rows
    assert ["coordinator", "order", "0", "1", "0%"] in rows
    document = json.loads((await asyncio.to_thread(cli, server, "stats", "--json")).stdout)
    assert {"agent": "coordinator", "route": "order", "up": 0, "down": 1, "up_share": 0.0} in (
        document["reactions"]
    )


def test_sessions_lists_and_shows_sessions(server: LiveServer) -> None:
    cli(server, "send", "--session", "listed-session", "hello")
    listing = cli(server, "sessions")
    assert listing.returncode == 0
    assert "listed-session" in listing.stdout
    page = json.loads(cli(server, "sessions", "--json", "--limit", "1").stdout)
    assert len(page["sessions"]) == 1
    assert page["total"] >= 1


def test_an_unknown_session_is_exit_code_6(server: LiveServer) -> None:
    result = cli(server, "sessions", "show", "nobody-here")
    assert result.returncode == 6
    assert "nobody-here" in result.stderr
    assert "Traceback" not in result.stderr


# -- errors ----------------------------------------------------------------------


def test_a_wrong_token_is_exit_code_5_with_advice(server: LiveServer) -> None:
    result = cli(server, "stats", "--token", "wrong")
    assert result.returncode == 5
    assert "refused the admin token" in result.stderr
    assert "--token" in result.stderr


def test_a_remote_server_without_a_token_asks_for_one(server: LiveServer) -> None:
    result = cli(server, "stats", "--url", "http://chat.example:8000")
    assert result.returncode == 5
    assert "not on this machine" in result.stderr


@pytest.mark.parametrize("command", ["stats", "sessions", "tail"])
def test_with_no_server_running_a_newcomer_is_told_so_not_asked_for_a_token(
    server: LiveServer, command: str
) -> None:
    port = free_port()  # nothing listens here, and no token file was written for it
    result = cli(server, command, "--url", f"http://127.0.0.1:{port}")
    assert result.returncode == 4
    assert "is `chatbuddy serve` running?" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_server_is_exit_code_4_with_a_hint(server: LiveServer) -> None:
    port = free_port()
    result = cli(server, "stats", "--url", f"http://127.0.0.1:{port}", "--token", "x")
    assert result.returncode == 4
    assert result.stderr.strip() == (
        f"Error: cannot connect to http://127.0.0.1:{port} — is `chatbuddy serve` running?"
    )


@pytest.mark.parametrize(
    "args",
    [["tail", "--session", "bad id"], ["send"], ["stats", "--url", "ftp://x"], ["send", "   "]],
)
def test_bad_arguments_are_usage_errors(server: LiveServer, args: list[str]) -> None:
    result = cli(server, *args)
    assert result.returncode == 2
    assert "Usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_chatbuddy_alone_prints_its_help_and_succeeds() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatbuddy"], capture_output=True, text=True, timeout=4 * TIMEOUT
    )
    assert result.returncode == 0
    assert "Usage:" in result.stdout
    assert "Commands:" in result.stdout
    for command in ("serve", "tail", "takeover", "bench"):
        assert f"  {command} " in result.stdout


def test_no_color_takes_the_colours_out_even_when_colour_is_forced(tmp_path: Path) -> None:
    shop = Path(chatbuddy.__file__).parent / "agents" / "data" / "shop.json"

    def check(*flags: str) -> str:
        env = {**os.environ, "FORCE_COLOR": "1"}
        env.pop("NO_COLOR", None)
        result = subprocess.run(
            [sys.executable, "-m", "chatbuddy", *flags, "shop", "check", str(shop)],
            capture_output=True, text=True, timeout=4 * TIMEOUT, env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    colour = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|38;)")
    assert colour.search(check())  # "The shop file is valid." in green
    plain = check("--no-color")
    assert "The shop file is valid." in plain
    assert not colour.search(plain)


def test_every_command_explains_itself() -> None:
    for command in ("serve", "tail", "stats", "send", "sessions"):
        result = subprocess.run(
            [sys.executable, "-m", "chatbuddy", command, "--help"],
            capture_output=True, text=True, timeout=4 * TIMEOUT,
        )  # fmt: skip
        assert result.returncode == 0
        assert "Examples:" in result.stdout
        if command != "serve":
            assert "--url" in result.stdout
            assert "--token" in result.stdout


# -- tail --------------------------------------------------------------------------


class Tail:
    """A running `chatbuddy tail`, read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, server: LiveServer, *args: str, **env: str) -> Tail:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chatbuddy", "tail", "--url", server.url, *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**server.env, **env},
        )  # fmt: skip
        tail = cls(process)
        await tail.notice("Following")
        return tail

    async def line(self) -> str:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), TIMEOUT)
        assert raw, "tail stopped printing"
        return raw.decode()

    async def line_with(self, text: str) -> str:
        for _ in range(200):
            line = await self.line()
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}")

    async def notice(self, text: str) -> str:
        assert self.process.stderr is not None
        for _ in range(20):
            raw = await asyncio.wait_for(self.process.stderr.readline(), 3 * TIMEOUT)
            if text in raw.decode():
                return raw.decode()
        raise AssertionError(f"no notice with {text!r}")

    async def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.process.wait(), TIMEOUT)


async def test_tail_shows_what_another_client_says_without_letting_it_style_the_terminal(
    server: LiveServer,
) -> None:
    tail = await Tail.start(server, "--session", "tailed", FORCE_COLOR="1")
    client = await ChatClient.open(server.port, "tailed", user_id="anna")
    await client.greeting()
    hostile = "[bold red]ALERT[/] \x1b[2J\x1b]0;pwned\x07 where is order 10042?"
    await client.chat("tailed", hostile)

    opened = await tail.line_with("open")
    assert "anna" in opened
    said = await tail.line_with("ALERT")
    assert "[bold red]ALERT[/]" in said  # literally, not as styling
    assert "\x1b[2J" not in said
    assert "\x1b]0;" not in said
    reply = await tail.line_with("reply")
    assert "#10042" in reply
    assert "order" in reply
    client.close()
    assert "close" in await tail.line_with("close")
    assert await tail.interrupt() == 130


async def test_tail_json_prints_one_event_per_line(server: LiveServer) -> None:
    tail = await Tail.start(server, "--json", "--session", "tailed-json")
    client = await ChatClient.open(server.port, "tailed-json")
    await client.greeting()
    events = [json.loads(await tail.line())]
    await client.chat("tailed-json", "hello")
    while events[-1]["type"] != "reply_done":
        events.append(json.loads(await tail.line()))
    client.close()
    assert events[0]["type"] == "connection_opened"
    assert events[1] == {**events[1], "type": "user_message", "content": "hello"}
    assert await tail.interrupt() == 130


async def test_tail_reconnects_when_the_server_comes_back(tmp_path: Path) -> None:
    env = serve_env(tmp_path)
    port = free_port()
    first = start_server(env, port=port)
    tail = await Tail.start(first)
    await asyncio.to_thread(stop, first)
    assert "lost the connection" in await tail.notice("reconnecting")

    second = start_server(
        env, port=port
    )  # a new server: a new admin token, read from the file again
    try:
        await tail.notice("Following")
        client = await ChatClient.open(second.port, "after-restart")
        await client.greeting()
        assert "after-restart" in await tail.line_with("open")
        client.close()
    finally:
        await tail.interrupt()
        await asyncio.to_thread(stop, second)


# -- stats --watch -------------------------------------------------------------------


async def test_stats_watch_waits_through_a_server_restart(tmp_path: Path) -> None:
    env = serve_env(tmp_path)
    port = free_port()
    first = start_server(env, port=port)
    watch = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatbuddy", "stats", "--watch", "--json", "--interval", "0.2",
        "--url", first.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert watch.stdout is not None
    assert watch.stderr is not None
    second: LiveServer | None = None

    async def document() -> dict[str, Any]:
        assert watch.stdout is not None
        line = await asyncio.wait_for(watch.stdout.readline(), 3 * TIMEOUT)
        assert line, "stats --watch stopped"
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    try:
        client = await ChatClient.open(first.port, "seen-before")  # the old server counts one
        while (await document())["counters"]["connections_opened"] == 0:
            pass
        client.close()
        await asyncio.to_thread(stop, first)
        notice = await asyncio.wait_for(watch.stderr.readline(), 3 * TIMEOUT)
        assert b"(retrying)" in notice  # it says so on stderr; stdout stays JSON

        second = start_server(env, port=port)  # a new admin token, read from the file again
        # Readings of the old server may still be in the pipe; then come the new one's.
        while (await document())["counters"]["connections_opened"] != 0:
            pass
        assert watch.returncode is None  # still watching
    finally:
        watch.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(watch.wait(), TIMEOUT) == 130
        if second is not None:
            await asyncio.to_thread(stop, second)
