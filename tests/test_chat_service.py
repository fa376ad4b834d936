"""The chat service and this node on their own (no Tornado): what each connection hears."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from chatbuddy.agents import make_agent
from chatbuddy.chat import ChatService, Grant, LocalNode
from chatbuddy.chat.counters import Counters
from chatbuddy.engine import Engine, Frame
from tests.builders import ENGINE_KINDS, build_engine, record, unlimited
from tests.doubles import FakeClock, RecordingConnection
from tests.helpers import eventually


@pytest.fixture(params=ENGINE_KINDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    built = build_engine(request.param, redis_url=redis_url, folder=tmp_path)
    yield built
    await built.close()


@pytest.fixture
async def node(engine: Engine) -> AsyncIterator[LocalNode]:
    local = LocalNode(engine.bus)
    await engine.start(local)
    await eventually(engine.ready, "engine ready")
    yield local
    await local.settle()


@pytest.fixture
def service(engine: Engine, node: LocalNode) -> ChatService:
    return ChatService(
        engine=engine,
        node=node,
        agent=make_agent("echo"),
        settings=unlimited(),
        counters=Counters(),
    )


async def grant(engine: Engine, session_id: str) -> Grant:
    await engine.store.create_session(record(session_id))
    stored = await engine.store.get_session(session_id)
    assert stored is not None
    return Grant(session=stored, session_token="tok", resumed=True)


async def life(engine: Engine, session_id: str, clock: FakeClock) -> Grant:
    """A session made at the store's (fake) time, and its grant."""
    await engine.store.create_session(record(session_id, now=clock.now))
    stored = await engine.store.get_session(session_id)
    assert stored is not None
    return Grant(session=stored, session_token="tok", resumed=True)


async def finished(pending: Awaitable[None] | None) -> None:
    """What handle_frame left to do, done (most frames leave nothing)."""
    if pending is not None:
        await pending


def tab(opened: Grant, connection_id: str) -> RecordingConnection:
    """A connection admitted to the session ``opened`` grants."""
    session = opened.session
    return RecordingConnection(connection_id, session.session_id, incarnation=session.incarnation)


def frames_of(connection: RecordingConnection) -> list[dict[str, object]]:
    return [json.loads(frame) for frame in connection.received]


def types_of(connection: RecordingConnection) -> list[object]:
    return [frame["type"] for frame in frames_of(connection)]


async def test_a_session_left_and_rejoined_in_one_breath_keeps_its_subscription(
    service: ChatService, node: LocalNode, engine: Engine
) -> None:
    opened = await grant(engine, "flicker")
    first = tab(opened, "c1")
    await service.attach(first, opened)
    # The last tab closes and a new one opens before anything else runs.
    service.detach(first, close_code=1001, duration=1.0)
    second = tab(opened, "c2")
    await service.attach(second, opened)
    await node.settle()  # the queued subscription changes have all run
    await engine.bus.publish("flicker", "hello again")
    await eventually(lambda: "hello again" in second.received, "the frame on the new tab")


async def test_a_message_is_echoed_to_the_other_tab_and_answered_to_both(
    service: ChatService, engine: Engine
) -> None:
    opened = await grant(engine, "two-tabs")
    sender, other = tab(opened, "c1"), tab(opened, "c2")
    await service.attach(sender, opened)
    await service.attach(other, opened)
    frame = {"type": "chat_message", "session_id": "two-tabs", "content": "hello"}
    await finished(service.handle_frame(sender, json.dumps(frame)))
    await eventually(lambda: "chat_response" in types_of(sender), "the reply to the sender")
    await eventually(lambda: "chat_response" in types_of(other), "the reply to the other tab")
    assert types_of(sender) == ["connection_established", "chat_response"]
    assert types_of(other) == ["connection_established", "user_message", "chat_response"]


@contextlib.asynccontextmanager
async def echo_service(kind: str, folder: Path) -> AsyncIterator[tuple[Engine, ChatService]]:
    """An engine of one kind with a node and an echo service of its own (for a test
    about one engine, not the fixture's three)."""
    engine = build_engine(kind, folder=folder)
    local = LocalNode(engine.bus)
    await engine.start(local)
    agent = make_agent("echo")
    try:
        yield (
            engine,
            ChatService(
                engine=engine, node=local, agent=agent, settings=unlimited(), counters=Counters()
            ),
        )
    finally:
        await local.settle()
        await engine.close()


async def test_a_message_the_file_could_not_keep_is_told_to_nobody_and_not_answered(
    tmp_path: Path,
) -> None:
    # The SQLite store commits an echoed message with its reply (one transaction):
    # when that fails, neither may reach anyone as if it were stored.
    async with echo_service("sqlite", tmp_path) as (engine, service):
        opened = await grant(engine, "unlucky")
        sender, other = tab(opened, "c1"), tab(opened, "c2")
        await service.attach(sender, opened)
        await service.attach(other, opened)
        frame = {"type": "chat_message", "session_id": "unlucky", "content": "hello"}
        with sqlite3.connect(tmp_path / "chatbuddy.db", isolation_level=None) as lock:
            lock.execute("BEGIN IMMEDIATE")  # holds the write lock past the busy timeout
            await finished(service.handle_frame(sender, json.dumps(frame)))
            lock.execute("ROLLBACK")
        failed = frames_of(sender)[-1]
        assert failed["type"] == "error"
        data = failed["data"]
        assert isinstance(data, dict)
        assert data["error_type"] == "storage_unavailable"
        assert "chat_response" not in types_of(sender)
        assert types_of(other) == ["connection_established", "error"]
        # The next message is stored and answered as usual.
        await finished(service.handle_frame(sender, json.dumps(frame)))
        await eventually(lambda: "chat_response" in types_of(other), "the reply to the other tab")
        assert types_of(other)[-2:] == ["user_message", "chat_response"]


async def test_with_one_tab_on_one_node_only_the_reply_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with echo_service("memory", tmp_path) as (engine, service):
        published: list[str | None] = []
        publish = engine.bus.publish

        async def counted(session_id: str, frame: Frame, **options: Any) -> None:
            published.append(options.get("exclude"))
            await publish(session_id, frame, **options)

        monkeypatch.setattr(engine.bus, "publish", counted)
        opened = await grant(engine, "alone")
        sender = tab(opened, "c1")
        await service.attach(sender, opened)
        frame = {"type": "chat_message", "session_id": "alone", "content": "hello"}
        await finished(service.handle_frame(sender, json.dumps(frame)))
        await eventually(lambda: "chat_response" in types_of(sender), "the reply")
        assert published == [None]  # no user_message for tabs that are not there

        other = tab(opened, "c2")  # a second tab opens: now it is told
        await service.attach(other, opened)
        await finished(service.handle_frame(sender, json.dumps(frame)))
        await eventually(lambda: "chat_response" in types_of(other), "the reply to the other tab")
        assert published == [None, "c1", None]
        assert types_of(other) == ["connection_established", "user_message", "chat_response"]


async def test_a_refusal_reaches_only_the_connection_that_caused_it(
    service: ChatService, engine: Engine
) -> None:
    opened = await grant(engine, "refused")
    sender, other = tab(opened, "c1"), tab(opened, "c2")
    await service.attach(sender, opened)
    await service.attach(other, opened)
    await finished(service.handle_frame(sender, '{"type": "dance"}'))
    assert types_of(sender)[-1] == "error"
    assert types_of(other) == ["connection_established"]


async def test_a_frame_from_a_connection_already_gone_is_ignored(
    service: ChatService, engine: Engine
) -> None:
    opened = await grant(engine, "gone")
    connection = tab(opened, "c1")
    await service.attach(connection, opened)
    service.detach(connection, close_code=1000, duration=0.1)
    await finished(service.handle_frame(connection, '{"type": "ping"}'))
    assert types_of(connection) == ["connection_established"]


async def test_when_an_id_belongs_to_a_new_session_only_the_old_sessions_tabs_are_closed() -> None:
    clock = FakeClock()
    engine = build_engine("memory", session_ttl=60, clock=clock)
    node = LocalNode(engine.bus)
    await engine.start(node)
    service = ChatService(
        engine=engine,
        node=node,
        agent=make_agent("echo"),
        settings=unlimited(),
        counters=Counters(),
    )
    old_life = await life(engine, "reused", clock)
    old_tab = tab(old_life, "old-tab")
    await service.attach(old_tab, old_life)

    clock.advance(61)  # the old life expires, and a newcomer opens the same id
    new_life = await life(engine, "reused", clock)
    assert new_life.session.incarnation != old_life.session.incarnation
    new_tab = tab(new_life, "new-tab")
    await service.attach(new_tab, new_life)

    assert await service.keep_sessions_alive() == 1
    assert not old_tab.alive  # closed: its session is gone
    assert new_tab.alive  # the new session's tab on this node stays
    await engine.close()


async def test_an_erasure_closes_the_erased_sessions_tabs_and_spares_a_new_one_on_its_id(
    engine: Engine, node: LocalNode, service: ChatService
) -> None:
    erased_life = await grant(engine, "forget-me")
    old_tab = tab(erased_life, "old-tab")
    await service.attach(old_tab, erased_life)
    erased = await engine.store.erase(session_id="forget-me")
    new_life = await grant(engine, "forget-me")  # the id taken again before the close
    new_tab = tab(new_life, "new-tab")
    await service.attach(new_tab, new_life)

    for session_id, incarnation in erased:  # as the admin API closes them
        await engine.bus.close_session(session_id, 4003, "session deleted", only=incarnation)
    await eventually(lambda: not old_tab.alive, "the erased session's tab closed")
    assert new_tab.alive
