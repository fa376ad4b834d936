"""What only the Redis engine does: its key layout, real expiry, outages and recovery."""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
from pathlib import Path

import pytest
import redis
from tornado.httpclient import AsyncHTTPClient

from chatbuddy.chat.frames import user_message_around
from chatbuddy.engine import Engine, Presence
from chatbuddy.engine.redis import redis_pair
from chatbuddy.errors import SessionNotFound, StorageUnavailable
from chatbuddy.records import utcnow
from chatbuddy.server import Server
from tests.builders import build_engine, record, unlimited, user_message
from tests.conftest import ADMIN_TOKEN
from tests.doubles import RecordingNode
from tests.helpers import TIMEOUT, ChatClient, eventually
from tests.redis_server import RedisServer


async def started(
    url: str, node: RecordingNode, *, session_ttl: float = 60, prefix: str = "chatbuddy:"
) -> Engine:
    store, bus = redis_pair(
        url, session_ttl=session_ttl, history_limit=50, prefix=prefix, heartbeat=0.05
    )
    engine = Engine("redis", store, bus)
    await engine.start(node)
    return engine


async def test_keys_of_a_session_share_a_hash_tag_under_the_prefix(
    redis_url: str, redis_server: RedisServer
) -> None:
    engine = await started(redis_url, RecordingNode(), prefix="shop1:")
    try:
        await engine.store.create_session(record("web-42", token="secret-token-value"))
        await engine.store.add_user_message("web-42", user_message("hi", client_message_id="c1"))
        with redis_server.client() as client:
            keys = set(client.keys("*"))
            assert {
                "shop1:{web-42}:session",
                "shop1:{web-42}:history",
                "shop1:{web-42}:seen",
                "shop1:sessions",
            } <= keys
            assert all(key.startswith("shop1:") for key in keys)
            dump = str(client.hgetall("shop1:{web-42}:session"))
            assert "secret-token-value" not in dump  # only its hash is stored
            ttl = client.pttl("shop1:{web-42}:history")
            assert 0 < ttl <= 60_000
    finally:
        await engine.close()


async def test_every_key_the_first_message_writes_expires_with_the_session(
    redis_url: str, redis_server: RedisServer
) -> None:
    engine = await started(redis_url, RecordingNode(), prefix="ttl:")
    try:
        await engine.store.create_session(record("first"))
        await engine.store.add_user_message("first", user_message("hi", client_message_id="c1"))
        with redis_server.client() as client:
            for part in ("session", "history", "seen", "leases"):
                ttl = client.pttl(f"ttl:{{first}}:{part}")
                assert 0 < ttl <= 60_000, f"{part}: {ttl}"
    finally:
        await engine.close()


async def test_a_message_no_other_tab_here_hears_is_published_only_if_another_node_listens(
    redis_url: str,
) -> None:
    here, there = RecordingNode(), RecordingNode()
    one = await started(redis_url, here, prefix="quiet:")
    two = await started(redis_url, there, prefix="quiet:")
    try:
        await one.store.create_session(record("q"))
        await one.bus.subscribe("q")
        alone = user_message_around("q", utcnow(), exclude="tab-1", sole_tab=True)
        first = await one.store.add_user_message("q", user_message("just us"), announce=alone)
        assert first.published  # nobody else listens: there is nobody to tell
        await one.bus.publish("q", "marker")  # delivered after anything published before it
        await eventually(lambda: any(f[1] == "marker" for f in here.frames), "the marker")
        assert [f[1] for f in here.frames] == ["marker"]

        await two.bus.subscribe("q")  # a tab of the session opens on another node
        second = await one.store.add_user_message("q", user_message("both"), announce=alone)
        assert not second.published  # so the caller publishes it

        everyone = user_message_around("q", utcnow(), exclude="tab-1")  # a second tab here
        third = await one.store.add_user_message("q", user_message("all"), announce=everyone)
        assert third.published
        await eventually(lambda: len(there.frames) == 1, "the announcement on the other node")
        assert '"content":"all"' in there.frames[0][1]
    finally:
        await two.close()
        await one.close()


async def test_a_session_expires_in_redis_after_its_ttl(redis_url: str) -> None:
    engine = await started(redis_url, RecordingNode(), session_ttl=0.3)
    try:
        await engine.store.create_session(record())
        await engine.store.add_user_message("s1", user_message())
        assert await engine.store.get_session("s1") is not None
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while await engine.store.get_session("s1") is not None:
            assert asyncio.get_running_loop().time() < deadline, "never expired"
            await asyncio.sleep(0.05)
        with pytest.raises(SessionNotFound):
            await engine.store.history("s1", after=None, limit=10)
        assert await engine.store.sweep_expired() == 1  # the index forgets it too
    finally:
        await engine.close()


async def test_redis_down_means_storage_unavailable_and_not_ready_then_recovery(
    own_redis: RedisServer,
) -> None:
    node = RecordingNode()
    engine = await started(own_redis.url, node)
    try:
        await engine.store.create_session(record())
        await engine.bus.subscribe("s1")
        await eventually(engine.ready, "ready")

        own_redis.stop()
        with pytest.raises(StorageUnavailable):
            await engine.store.add_user_message("s1", user_message())
        await eventually(lambda: not engine.ready(), "not ready")

        own_redis.start()  # the same port; data kept (append-only file)
        await eventually(engine.ready, "ready again")
        added = await engine.store.add_user_message("s1", user_message("after the outage"))
        assert added.message.id == 1
        await engine.bus.publish("s1", "after-restart")  # the listener resubscribed by itself
        await eventually(lambda: ("s1", "after-restart", None) in node.frames, "fan-out back")
    finally:
        await engine.close()


async def test_an_engine_started_while_redis_is_down_connects_when_it_comes_up(
    own_redis: RedisServer,
) -> None:
    own_redis.stop()
    node = RecordingNode()
    engine = await started(own_redis.url, node)
    try:
        await engine.bus.subscribe("late")
        assert not engine.ready()
        with pytest.raises(StorageUnavailable):
            await engine.store.get_session("late")
        own_redis.start()
        await eventually(engine.ready, "ready")
        await engine.bus.publish("late", "hello")
        await eventually(lambda: bool(node.frames), "a frame")
    finally:
        await engine.close()


async def test_a_node_that_stops_beating_drops_out_of_presence_within_seconds(
    redis_url: str, redis_server: RedisServer
) -> None:
    engine = await started(redis_url, RecordingNode(local=Presence(1, {"here": 1}, {})))
    try:
        await eventually(engine.ready, "ready")
        # Another node's last heartbeat, as it wrote it before it died: it expires by itself.
        with redis_server.client() as client:
            client.set(
                "chatbuddy:node:gone",
                json.dumps({"connections": 3, "sessions": {"x": 3}, "users": {}}),
                px=300,
            )
            client.sadd("chatbuddy:nodes", "gone")
        presence = await engine.bus.cluster_presence()
        assert (presence.connections, presence.nodes) == (4, 2)
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while (await engine.bus.cluster_presence()).connections != 1:
            assert asyncio.get_running_loop().time() < deadline, "the dead node never dropped out"
            await asyncio.sleep(0.05)
        with redis_server.client() as client:
            assert "gone" not in client.smembers("chatbuddy:nodes")  # pruned when counted
    finally:
        await engine.close()


async def test_two_thousand_concurrent_requests_all_succeed(redis_url: str) -> None:
    """A traffic spike: far more requests at once than any connection pool would hold."""
    engine = await started(redis_url, RecordingNode())
    try:
        sessions = [f"spike-{n}" for n in range(500)]
        await asyncio.gather(*(engine.store.create_session(record(sid)) for sid in sessions))
        steps = [
            step
            for sid in sessions
            for step in (
                engine.store.add_user_message(sid, user_message("hi")),
                engine.store.touch_session(sid),
                engine.store.history(sid, after=None, limit=10),
                engine.bus.publish(sid, "frame"),
            )
        ]
        results = await asyncio.gather(*steps, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == []
        assert engine.ready()
    finally:
        await engine.close()


def documented_acl(password: str) -> list[str]:
    """The ACL SETUSER line of docs/redis.md, with ``password``, as arguments."""
    docs = (Path(__file__).parent.parent / "docs" / "redis.md").read_text()
    lines = [line for line in docs.splitlines() if line.startswith("ACL SETUSER chatbuddy ")]
    assert len(lines) == 1, "docs/redis.md shows one ACL line"
    return shlex.split(lines[0].replace(">PASSWORD", f">{password}"))


async def test_the_documented_acl_is_all_chatbuddy_needs(own_redis: RedisServer) -> None:
    password = secrets.token_hex(16)
    with own_redis.client() as admin:
        admin.execute_command(*documented_acl(password))
    url = f"redis://chatbuddy:{password}@127.0.0.1:{own_redis.port}/0"
    engine = build_engine("redis", redis_url=url)
    settings = unlimited(port=0, admin_token=ADMIN_TOKEN, agent="echo")
    async with Server(settings, engine=engine) as server:
        await eventually(server.engine.ready, "the engine ready")
        tab = await ChatClient.open(server.port, "acl-ed")
        token = (await tab.greeting())["session_token"]
        other = await ChatClient.open(server.port, "acl-ed", session_token=token)
        await other.greeting()
        reply = await tab.chat("acl-ed", "hello")  # scripts, history, fan-out
        assert (await other.expect("user_message"))["data"]["content"] == "hello"
        await tab.send(type="history")
        assert len((await tab.expect("history"))["data"]["messages"]) == 2
        stats = await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{server.port}/api/v1/websocket/stats",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert json.loads(stats.body)["websocket_stats"]["total_connections"] == 2
        assert reply["content"]
        tab.close()
        other.close()

    limited = redis.Redis(port=own_redis.port, username="chatbuddy", password=password)
    with limited:
        for command in (("PUBLISH", "other:channel", "x"), ("GET", "other:key"), ("FLUSHALL",)):
            with pytest.raises(redis.exceptions.NoPermissionError):
                limited.execute_command(*command)  # type: ignore[no-untyped-call]
