"""The Redis engine's pub/sub reader: order, unsubscribe, restarts, log-in, slow readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatbuddy.engine.redis.client import RedisClient
from chatbuddy.engine.redis.endpoint import RedisUnavailable
from chatbuddy.engine.redis.subscriber import Subscriber
from tests.helpers import TIMEOUT
from tests.redis_server import RedisServer


async def next_messages(messages: AsyncIterator[tuple[str, str]], count: int) -> list[Any]:
    """The next ``count`` messages; fails if they do not come within TIMEOUT."""

    async def take() -> list[tuple[str, str]]:
        return [await anext(messages) for _ in range(count)]

    return await asyncio.wait_for(take(), TIMEOUT)


# -- pub/sub ----------------------------------------------------------------------


async def test_a_subscriber_receives_messages_in_publish_order_on_several_channels(
    redis_url: str,
) -> None:
    client = RedisClient(redis_url)
    subscriber = Subscriber(redis_url)
    try:
        await subscriber.connect()
        await subscriber.subscribe("a", "b", "c")
        assert subscriber.channels == {"a", "b", "c"}
        sent = [("abc"[i % 3], f"message {i}") for i in range(300)]
        receivers = await client.execute_many([("PUBLISH", ch, data) for ch, data in sent])
        assert receivers == [1] * 300
        assert await next_messages(subscriber.messages(), 300) == sent
    finally:
        await subscriber.close()
        await client.close()


async def test_unsubscribe_stops_a_channels_messages(redis_url: str) -> None:
    client = RedisClient(redis_url)
    subscriber = Subscriber(redis_url)
    try:
        await subscriber.connect()
        await subscriber.subscribe("a", "b")
        await subscriber.unsubscribe("a")
        assert subscriber.channels == {"b"}
        assert await client.execute("PUBLISH", "a", "not for us") == 0
        assert await client.execute("PUBLISH", "b", "for us") == 1
        assert await next_messages(subscriber.messages(), 1) == [("b", "for us")]
        await subscriber.unsubscribe()  # all that are left
        assert subscriber.channels == frozenset()
        assert await client.execute("PUBLISH", "b", "gone") == 0
        await subscriber.ping()  # the connection is still fine
    finally:
        await subscriber.close()
        await client.close()


async def test_a_redis_restart_ends_messages_with_redis_unavailable_and_resubscribing_works(
    own_redis: RedisServer,
) -> None:
    client = RedisClient(own_redis.url)
    subscriber = Subscriber(own_redis.url)
    try:
        await subscriber.connect()
        await subscriber.subscribe("frames")
        messages = subscriber.messages()
        await client.execute("PUBLISH", "frames", "before")
        assert await next_messages(messages, 1) == [("frames", "before")]

        own_redis.stop()
        with pytest.raises(RedisUnavailable, match="lost the connection"):
            await asyncio.wait_for(anext(messages), TIMEOUT)
        assert subscriber.channels == frozenset()
        with pytest.raises(RedisUnavailable):
            await subscriber.connect()  # still down

        own_redis.start()
        await subscriber.connect()
        await subscriber.subscribe("frames")
        assert await client.execute("PUBLISH", "frames", "after") == 1
        assert await next_messages(subscriber.messages(), 1) == [("frames", "after")]
    finally:
        await subscriber.close()
        await client.close()


async def test_a_subscriber_logs_in_with_the_urls_password(locked_redis: RedisServer) -> None:
    subscriber = Subscriber(locked_redis.url)
    client = RedisClient(locked_redis.url)
    try:
        await subscriber.connect()
        await subscriber.subscribe("locked")
        assert await client.execute("PUBLISH", "locked", "hello") == 1
        assert await next_messages(subscriber.messages(), 1) == [("locked", "hello")]
    finally:
        await subscriber.close()
        await client.close()


async def test_a_slow_reader_pauses_the_socket_and_loses_nothing(redis_url: str) -> None:
    client = RedisClient(redis_url)
    subscriber = Subscriber(redis_url, max_buffered=10)
    try:
        await subscriber.connect()
        await subscriber.subscribe("busy")
        sent = [("busy", str(i)) for i in range(500)]
        await client.execute_many([("PUBLISH", ch, data) for ch, data in sent])
        assert await next_messages(subscriber.messages(), 500) == sent
    finally:
        await subscriber.close()
        await client.close()


async def test_a_subscriber_that_is_not_connected_says_so(redis_url: str) -> None:
    subscriber = Subscriber(redis_url)
    with pytest.raises(RedisUnavailable, match="not connected"):
        await subscriber.subscribe("a")
    with pytest.raises(RedisUnavailable, match="not connected"):
        await anext(subscriber.messages())
    await subscriber.connect()
    await subscriber.close()
    with pytest.raises(RedisUnavailable):
        await subscriber.ping()
