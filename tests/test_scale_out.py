"""Several `chatbuddy serve` processes sharing one real Redis act as one service."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from tests.helpers import TIMEOUT, ChatClient
from tests.processes import LiveServer, serve_env, start_server
from tests.redis_server import RedisServer

TOKEN = "scale-out-admin-token"
QUESTION = "Mennyi az ára a Samsung Galaxy S24-nek?"


@dataclass
class Cluster:
    redis: RedisServer
    one: LiveServer
    two: LiveServer
    log: Path

    def start_node(self) -> LiveServer:
        env = self.one.env
        return start_server(env, "--redis-url", self.redis.url, log=self.log)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A Redis of its own (to restart) and two nodes using it."""
    redis = RedisServer(tmp_path)
    redis.start()
    env = serve_env(tmp_path / "runtime", CHATBUDDY_ADMIN_TOKEN=TOKEN, CHATBUDDY_LOG_LEVEL="info")
    log = tmp_path / "nodes.log"
    one = start_server(env, "--redis-url", redis.url, log=log)
    two = start_server(env, "--redis-url", redis.url, log=log)
    yield Cluster(redis, one, two, log)
    for node in (one, two):
        node.stop(signal.SIGKILL)
    redis.stop()


async def ready(node: LiveServer) -> None:
    """Wait until the node says it can serve (its engine reaches Redis)."""
    deadline = asyncio.get_running_loop().time() + 2 * TIMEOUT
    while (await node.get("/readyz")).code != 200:
        assert asyncio.get_running_loop().time() < deadline, "the node never became ready"
        await asyncio.sleep(0.05)


async def until_connections(node: LiveServer, count: int) -> dict[str, object]:
    """Stats of ``node`` once they count ``count`` connections (presence is a heartbeat)."""
    deadline = asyncio.get_running_loop().time() + 2 * TIMEOUT
    while True:
        stats = await node.stats(TOKEN)
        if stats["websocket_stats"]["total_connections"] == count:
            return stats
        assert asyncio.get_running_loop().time() < deadline, f"stats stayed at {stats}"
        await asyncio.sleep(0.1)


async def two_tabs(cluster: Cluster, session: str) -> tuple[ChatClient, ChatClient, str]:
    """One session open on both nodes."""
    await ready(cluster.one)
    await ready(cluster.two)
    first = await ChatClient.open(cluster.one.port, session, user_id="anna")
    token = (await first.greeting())["session_token"]
    second = await ChatClient.open(cluster.two.port, session, session_token=token)
    assert (await second.greeting())["resumed"] is True
    return first, second, token


async def test_both_tabs_on_different_nodes_see_every_message_and_reply(cluster: Cluster) -> None:
    first, second, _ = await two_tabs(cluster, "across")
    await first.send(type="chat_message", session_id="across", content=QUESTION)
    echoed = await second.expect("user_message")
    assert echoed["data"]["content"] == QUESTION
    chunks_two, reply_two = await second.reply()
    chunks_one, reply_one = await first.reply()
    assert reply_one == reply_two
    assert chunks_one == chunks_two
    assert "349\u202f990\u202fFt" in reply_one["content"]

    await second.send(type="chat_message", session_id="across", content="Where is order 10042?")
    assert (await first.expect("user_message"))["data"]["content"] == "Where is order 10042?"
    _, answer = await first.reply()
    assert "#10042" in answer["content"]
    assert (await second.reply())[1] == answer


async def test_a_message_over_http_to_one_node_reaches_the_tab_on_the_other(
    cluster: Cluster,
) -> None:
    await ready(cluster.one)
    await ready(cluster.two)
    tab = await ChatClient.open(cluster.two.port, "by-post", user_id="anna")
    token = (await tab.greeting())["session_token"]
    response = await AsyncHTTPClient().fetch(
        cluster.one.url + "/api/v1/chat",
        method="POST",
        body=json.dumps({"session_id": "by-post", "message": QUESTION}),
        headers={"Content-Type": "application/json", "X-Session-Token": token},
        raise_error=False,
    )
    assert response.code == 200
    # Node one has no tab of the session: its only listener is node two's.
    assert (await tab.expect("user_message"))["data"]["content"] == QUESTION
    _, reply = await tab.reply()
    assert reply["content"] == json.loads(response.body)["message"]


async def test_stats_on_either_node_count_connections_on_both(cluster: Cluster) -> None:
    await two_tabs(cluster, "counted")
    for node in (cluster.one, cluster.two):
        stats = await until_connections(node, 2)
        assert stats["websocket_stats"] == {
            "total_connections": 2,
            "total_sessions": 1,
            "total_users": 1,
            "sessions": {"counted": 2},
            "users": {"anna": 2},
        }
        assert (stats["nodes"], stats["engine"]) == (2, "redis")


async def test_tail_on_one_node_shows_events_of_the_other(cluster: Cluster) -> None:
    await ready(cluster.one)
    await ready(cluster.two)
    request = HTTPRequest(
        f"ws://127.0.0.1:{cluster.one.port}/ws/admin/tail",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    tail = await asyncio.wait_for(websocket_connect(request), TIMEOUT)
    # The other node hears that someone watches when the tail subscribes (or at its
    # next heartbeat); until then it builds no events, so keep talking until it has.
    client = await ChatClient.open(cluster.two.port, "tailed-remotely")
    await client.greeting()
    deadline = asyncio.get_running_loop().time() + 2 * TIMEOUT
    while True:
        await client.chat("tailed-remotely", "hello")
        try:
            frame = await asyncio.wait_for(tail.read_message(), 0.5)
        except TimeoutError:
            assert asyncio.get_running_loop().time() < deadline, "no event reached the tail"
            continue
        assert frame is not None
        event = json.loads(frame)
        assert event["session_id"] == "tailed-remotely"
        assert event["type"] in ("connection_opened", "user_message", "reply_chunk", "reply_done")
        break
    tail.close()


async def test_a_killed_node_drops_out_of_the_counts_within_seconds(cluster: Cluster) -> None:
    await two_tabs(cluster, "doomed")
    await until_connections(cluster.one, 2)
    cluster.two.stop(signal.SIGKILL)  # no goodbye: only its heartbeat stops
    stats = await until_connections(cluster.one, 1)
    assert stats["nodes"] == 1


async def test_a_conversation_moves_to_another_node_with_its_whole_history(
    cluster: Cluster,
) -> None:
    await ready(cluster.one)
    client = await ChatClient.open(cluster.one.port, "moving", user_id="anna")
    token = (await client.greeting())["session_token"]
    replies = [await client.chat("moving", f"Where is order 1004{n}?") for n in range(1, 4)]
    cluster.one.stop()  # a clean stop: the client is told to go elsewhere
    assert await client.closed() == 1001

    back = await ChatClient.open(cluster.two.port, "moving", session_token=token)
    greeting = await back.greeting()
    assert greeting["resumed"] is True
    assert greeting["last_message_id"] == replies[-1]["message_id"]
    await back.send(type="history")
    messages = (await back.expect("history"))["data"]["messages"]
    assert len(messages) == 6
    assert [m["id"] for m in messages if m["role"] == "assistant"] == [
        r["message_id"] for r in replies
    ]
    reply = await back.chat("moving", "And order 10044?")
    assert reply["message_id"] > replies[-1]["message_id"]


async def test_fan_out_recovers_when_redis_restarts(cluster: Cluster) -> None:
    first, second, _ = await two_tabs(cluster, "survivor")
    cluster.redis.stop()
    await first.send(
        type="chat_message", session_id="survivor", content="hello?", client_message_id="m-1"
    )
    error = await first.error()
    assert error["error_type"] == "storage_unavailable"
    await first.send(type="ping")  # still connected
    await first.expect("pong")

    cluster.redis.start()
    await ready(cluster.one)
    await ready(cluster.two)
    await first.send(
        type="chat_message", session_id="survivor", content="hello?", client_message_id="m-1"
    )
    assert (await second.expect("user_message"))["data"]["client_message_id"] == "m-1"
    _, on_second = await second.reply()
    _, on_first = await first.reply()
    assert on_first == on_second


async def test_a_node_started_while_redis_is_down_says_so_and_serves_once_it_is_up(
    cluster: Cluster,
) -> None:
    cluster.redis.stop()
    late = cluster.start_node()
    try:
        assert (await late.get("/healthz")).code == 200
        response = await late.get("/readyz")
        assert response.code == 503
        assert json.loads(response.body) == {"status": "not ready", "engine": "redis"}
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while "is not reachable" not in cluster.log.read_text():  # the node says why
            assert asyncio.get_running_loop().time() < deadline, cluster.log.read_text()
            await asyncio.sleep(0.05)
        cluster.redis.start()
        await ready(late)
        client = await ChatClient.open(late.port, "late-start")
        await client.greeting()
        assert "349" in (await client.chat("late-start", QUESTION))["content"]
    finally:
        late.stop()


async def test_a_resent_message_is_answered_once(cluster: Cluster) -> None:
    first, second, _ = await two_tabs(cluster, "resender")
    reply = await first.chat("resender", QUESTION, client_message_id="once")
    await second.expect("user_message")
    await second.reply()
    await first.send(
        type="chat_message", session_id="resender", content=QUESTION, client_message_id="once"
    )
    again = await first.expect("chat_response")
    assert again["data"]["message_id"] == reply["message_id"]
    await first.send(type="history")
    messages = (await first.expect("history"))["data"]["messages"]
    assert [m["client_message_id"] for m in messages if m["role"] == "user"] == ["once"]
