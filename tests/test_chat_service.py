"""The chat service on its own (no Tornado): subscriptions follow connections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tornado.ioloop

from chatbuddy.agents import make_agent
from chatbuddy.chat import ChatService, Grant
from chatbuddy.chat.counters import Counters
from chatbuddy.chat.registry import ConnectionRegistry
from chatbuddy.engine import Engine, MemoryEngine
from chatbuddy.engine.redis import RedisEngine
from chatbuddy.settings import Settings
from tests.doubles import RecordingConnection
from tests.engines import record
from tests.helpers import eventually


@pytest.fixture(params=["memory", "redis"])
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "memory":
        return MemoryEngine(session_ttl=60, history_limit=50)
    url = request.getfixturevalue("redis_url")
    return RedisEngine(url=url, session_ttl=60, history_limit=50, heartbeat=0.05)


@pytest.fixture
def service(io_loop: tornado.ioloop.IOLoop, engine: Engine) -> Iterator[ChatService]:
    built = ChatService(
        engine=engine,
        registry=ConnectionRegistry(),
        agent=make_agent("echo"),
        settings=Settings(),
        counters=Counters(),
    )
    io_loop.run_sync(built.start)
    io_loop.run_sync(lambda: eventually(engine.ready, "engine ready"))
    yield built
    io_loop.run_sync(built.close)


async def test_a_session_left_and_rejoined_in_one_breath_keeps_its_subscription(
    service: ChatService, engine: Engine
) -> None:
    await engine.create_session(record("flicker"))
    stored = await engine.get_session("flicker")
    assert stored is not None
    grant = Grant(session=stored, session_token="tok", resumed=True)
    first = RecordingConnection("c1", "flicker")
    await service.attach(first, grant)
    # The last tab closes and a new one opens before anything else runs.
    service.detach(first, close_code=1001, duration=1.0)
    second = RecordingConnection("c2", "flicker")
    await service.attach(second, grant)
    await service.settle()  # the queued subscription changes have all run
    await engine.publish("flicker", "hello again")
    await eventually(lambda: "hello again" in second.received, "the frame on the new tab")
