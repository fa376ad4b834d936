"""A person steps in across nodes: the customer on one `chatbuddy serve`, the operator
(through the admin API and the CLI) on another, one real Redis between them."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatbuddy.client.admin import AdminClient, EventStream
from chatbuddy.client.target import Target
from chatbuddy.errors import Conflict
from tests.helpers import TIMEOUT, ChatClient
from tests.processes import LiveServer, serve_env, start_server
from tests.redis_server import RedisServer
from tests.test_cli_handoff import ConsoleProcess

TOKEN = "handoff-nodes-admin-token"
SID = "across-nodes"
#: Short enough to wait for a hold to run out; a console renews its hold every second.
GRACE = "3s"


@dataclass
class Nodes:
    """The customer's node, the operator's node, and an admin client for each."""

    customer_node: LiveServer
    operator_node: LiveServer
    on_customer_node: AdminClient
    on_operator_node: AdminClient


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    redis = RedisServer(tmp_path)
    redis.start()
    env = serve_env(tmp_path / "runtime", CHATBUDDY_ADMIN_TOKEN=TOKEN)
    args = ("--redis-url", redis.url, "--agent", "echo", "--operator-grace", GRACE)
    one = start_server(env, *args, log=tmp_path / "nodes.log")
    two = start_server(env, *args, log=tmp_path / "nodes.log")
    yield Nodes(one, two, AdminClient(Target(one.url, TOKEN)), AdminClient(Target(two.url, TOKEN)))
    for node in (one, two):
        node.stop(signal.SIGKILL)
    redis.stop()


@pytest.fixture
async def anna(nodes: Nodes) -> AsyncIterator[ChatClient]:
    """The customer, on the first node."""
    client = await ChatClient.open(nodes.customer_node.port, SID, user_id="anna")
    await client.greeting()
    yield client
    client.close()


@pytest.fixture
async def operator_tail(nodes: Nodes, anna: ChatClient) -> AsyncIterator[EventStream]:
    """What the operator watches, on the second node."""
    stream = await nodes.on_operator_node.watch(SID)
    await until_events_flow(anna, stream)
    yield stream
    stream.close()


async def until_events_flow(anna: ChatClient, stream: EventStream) -> None:
    """Wait until the customer's node builds events for the new watcher on the other node
    (it hears of it within a Redis round trip): a customer's typing 'stop', which
    changes nothing, is sent until one comes through."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        await anna.send(type="typing", state="stop")
        try:
            event = await asyncio.wait_for(stream.next(), TIMEOUT / 20)
        except TimeoutError:
            assert asyncio.get_running_loop().time() < deadline, "no events from the other node"
            continue
        if event["type"] == "typing":
            return


async def frames_until(client: ChatClient, kind: str) -> list[dict[str, Any]]:
    """Every frame up to and with the first of ``kind``."""
    frames = [await client.receive()]
    while frames[-1]["type"] != kind:
        frames.append(await client.receive())
    return frames


async def frame_of(client: ChatClient, kind: str) -> dict[str, Any]:
    data: dict[str, Any] = (await frames_until(client, kind))[-1]["data"]
    return data


async def event_of(stream: EventStream, kind: str) -> dict[str, Any]:
    while True:
        event = await asyncio.wait_for(stream.next(), TIMEOUT)
        if event["type"] == kind:
            return event


async def test_an_operator_on_another_node_takes_over_talks_and_gives_it_back(
    nodes: Nodes, anna: ChatClient, operator_tail: EventStream
) -> None:
    operator = nodes.on_operator_node
    await operator.take(SID, "Kiss Éva")
    assert (await frame_of(anna, "operator_joined"))["operator"] == "Kiss Éva"

    await anna.send(type="chat_message", session_id=SID, content="is anyone there?")
    heard = await event_of(operator_tail, "user_message")
    assert heard["content"] == "is anyone there?"  # reached the operator's node

    await anna.send(type="typing", state="start")
    assert (await event_of(operator_tail, "typing"))["state"] == "start"
    await operator.read(SID, "Kiss Éva", heard["message_id"])
    await operator.typing(SID, "Kiss Éva", True)
    said = await operator.say(SID, "Kiss Éva", "Éva here. Let me look.")
    frames = await frames_until(anna, "operator_message")
    kinds = [f["type"] for f in frames]
    assert "chat_response" not in kinds  # the assistant stayed silent on both nodes
    by_kind = {f["type"]: f["data"] for f in frames}
    assert by_kind["read"] == {"reader": "operator", "message_id": heard["message_id"],
                               "name": "Kiss Éva"}  # fmt: skip
    assert by_kind["typing"] == {"who": "operator", "name": "Kiss Éva", "state": "start"}
    assert by_kind["operator_message"]["id"] == said["message"]["id"]

    await anna.send(type="read", message_id=said["message"]["id"])
    assert (await event_of(operator_tail, "read"))["message_id"] == said["message"]["id"]
    await anna.send(type="reaction", message_id=said["message"]["id"], reaction="up")
    reacted = await event_of(operator_tail, "reaction")
    assert (reacted["message_id"], reacted["reaction"]) == (said["message"]["id"], "up")

    with pytest.raises(Conflict) as refused:  # a second operator, on the customer's node
        await nodes.on_customer_node.take(SID, "Bob")
    assert "Kiss Éva holds session" in refused.value.message

    await nodes.on_customer_node.release(SID, "Kiss Éva")  # either node can give it back
    assert await frame_of(anna, "operator_left") == {"operator": "Kiss Éva", "reason": "released"}
    assert (await anna.chat(SID, "hello bot"))["content"] == "hello bot"


async def test_a_console_on_another_node_holds_refuses_a_second_and_its_grace_runs_out(
    nodes: Nodes, anna: ChatClient, operator_tail: EventStream
) -> None:
    def cli(node: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chatbuddy", *args, "--url", node.url],
            capture_output=True, text=True, env=node.env, timeout=4 * TIMEOUT,
        )  # fmt: skip

    console = await ConsoleProcess.start(nodes.operator_node, SID, "--as", "Anna")
    assert (await frame_of(anna, "operator_joined"))["operator"] == "Anna"
    await console.notice("You hold the conversation")
    await anna.send(type="chat_message", session_id=SID, content="hello?")
    assert "hello?" in await console.line_with("hello?")  # the console on the other node
    await console.type("Hello, Anna here!")
    frames = await frames_until(anna, "operator_message")
    assert frames[-1]["data"]["content"] == "Hello, Anna here!"
    assert "chat_response" not in [f["type"] for f in frames]  # silent while held

    refused = await asyncio.to_thread(cli, nodes.customer_node, "say", SID, "me", "--as", "Bob")
    assert refused.returncode == 7
    assert "Anna holds session" in refused.stderr

    console.process.send_signal(signal.SIGKILL)  # the console dies without releasing
    await console.process.wait()
    frames = await frames_until(anna, "operator_left")  # GRACE later, from whichever node
    assert frames[-1]["data"] == {"operator": "Anna", "reason": "timeout"}
    assert (await event_of(operator_tail, "operator_left"))["reason"] == "timeout"
    assert (await anna.chat(SID, "anyone?"))["content"] == "anyone?"
    # Both nodes sweep expired holds; the customer heard it ended exactly once.
    await anna.send(type="ping")
    assert "operator_left" not in [f["type"] for f in await frames_until(anna, "pong")]
