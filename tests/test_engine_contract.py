"""One contract, two engines: the in-memory engine and the Redis engine behave alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tornado.ioloop

from chatbuddy.engine import Engine, MemoryEngine, Presence
from chatbuddy.engine.redis import RedisEngine
from chatbuddy.errors import SessionNotFound
from chatbuddy.wire.protocol import parse_server_message
from tests.engines import RecordingNode, record, reply, user_message
from tests.helpers import eventually

HISTORY_LIMIT = 5


@pytest.fixture
def node() -> RecordingNode:
    return RecordingNode()


@pytest.fixture(params=["memory", "redis"])
def engine(
    request: pytest.FixtureRequest, io_loop: tornado.ioloop.IOLoop, node: RecordingNode
) -> Iterator[Engine]:
    built: Engine
    if request.param == "memory":
        built = MemoryEngine(session_ttl=60, history_limit=HISTORY_LIMIT)
    else:
        url = request.getfixturevalue("redis_url")
        built = RedisEngine(url=url, session_ttl=60, history_limit=HISTORY_LIMIT, heartbeat=0.05)
    io_loop.run_sync(lambda: built.start(node))
    yield built
    io_loop.run_sync(built.close)


async def test_a_session_id_can_be_created_once(engine: Engine) -> None:
    assert await engine.create_session(record())
    assert not await engine.create_session(record(token="other"))
    stored = await engine.get_session("s1")
    assert stored is not None
    assert stored.user_id == "anna"
    assert stored.client_info.user_agent == "pytest"
    assert stored.token_matches("tok")
    assert not stored.token_matches("other")
    assert await engine.get_session("nobody") is None


async def test_touching_marks_activity_and_connection(engine: Engine) -> None:
    created = record()
    await engine.create_session(created)
    touched = await engine.touch_session("s1", connected=True)
    assert touched.last_activity >= created.last_activity
    assert touched.connected_at == touched.last_activity
    with pytest.raises(SessionNotFound):
        await engine.touch_session("nobody")


async def test_user_messages_get_growing_ids_and_reserve_their_replys(engine: Engine) -> None:
    await engine.create_session(record())
    first = await engine.add_user_message("s1", user_message("one"))
    second = await engine.add_user_message("s1", user_message("two"))
    assert (first.message.id, first.reply_id) == (1, 2)
    assert (second.message.id, second.reply_id) == (3, 4)
    assert first.message.content == "one"
    assert not first.duplicate


async def test_a_reply_stored_late_keeps_id_order_and_is_published(
    engine: Engine, node: RecordingNode
) -> None:
    await engine.create_session(record())
    await engine.subscribe("s1")
    await eventually(engine.ready, "engine ready")
    first = await engine.add_user_message("s1", user_message("one"), exclude="sender")
    await engine.add_user_message("s1", user_message("two"), exclude="sender")
    assert first.reply_id is not None
    await engine.add_reply("s1", reply(first.reply_id, first.message.id), publish="frame-1")
    messages, _ = await engine.history("s1", after=None, limit=10)
    assert [(m.id, m.role) for m in messages] == [(1, "user"), (2, "assistant"), (3, "user")]
    assert messages[1].metadata == {"processing_time": 0.001, "agent": "general"}
    await eventually(lambda: len(node.frames) == 3, "two user messages and the reply")
    published = [parse_server_message(frame) for _, frame, _ in node.frames[:2]]
    assert [(f.type, f.data.content) for f in published] == [  # type: ignore[union-attr]
        ("user_message", "one"),
        ("user_message", "two"),
    ]
    assert [exclude for _, _, exclude in node.frames] == ["sender", "sender", None]
    assert node.frames[2] == ("s1", "frame-1", None)


async def test_history_pages_forward_and_shows_the_latest(engine: Engine) -> None:
    await engine.create_session(record())
    for n in range(4):
        await engine.add_user_message("s1", user_message(f"m{n}"))  # ids 1, 3, 5, 7
    page, more = await engine.history("s1", after=1, limit=2)
    assert ([m.id for m in page], more) == ([3, 5], True)
    page, more = await engine.history("s1", after=5, limit=2)
    assert ([m.id for m in page], more) == ([7], False)
    latest, more = await engine.history("s1", after=None, limit=2)
    assert ([m.id for m in latest], more) == ([5, 7], False)


async def test_history_is_capped_but_counts_every_message(engine: Engine) -> None:
    await engine.create_session(record())
    for n in range(HISTORY_LIMIT + 2):
        await engine.add_user_message("s1", user_message(f"m{n}"))
    messages, _ = await engine.history("s1", after=None, limit=100)
    assert len(messages) == HISTORY_LIMIT
    assert messages[0].content == "m2"
    stored = await engine.get_session("s1")
    assert stored is not None
    assert stored.message_count == HISTORY_LIMIT + 2
    assert stored.last_message_id == messages[-1].id


async def test_a_resent_client_message_is_stored_once(engine: Engine) -> None:
    await engine.create_session(record())
    first = await engine.add_user_message("s1", user_message("hi", client_message_id="c-1"))
    again = await engine.add_user_message("s1", user_message("hi", client_message_id="c-1"))
    other = await engine.add_user_message("s1", user_message("hi", client_message_id="c-2"))
    assert again.duplicate
    assert again.message.id == first.message.id
    assert again.message.content == "hi"
    assert not other.duplicate
    messages, _ = await engine.history("s1", after=None, limit=10)
    assert [m.client_message_id for m in messages] == ["c-1", "c-2"]


async def test_writing_to_a_missing_session_raises(engine: Engine) -> None:
    with pytest.raises(SessionNotFound):
        await engine.add_user_message("ghost", user_message())
    with pytest.raises(SessionNotFound):
        await engine.add_reply("ghost", reply(2, 1), publish="x")
    with pytest.raises(SessionNotFound):
        await engine.history("ghost", after=None, limit=1)
    with pytest.raises(SessionNotFound):
        await engine.history("ghost", after=None, limit=1, touch=False)


async def test_sessions_are_listed_most_recently_active_first(engine: Engine) -> None:
    for sid in ("a", "b", "c"):
        await engine.create_session(record(sid))
    await engine.touch_session("a")
    listed, total = await engine.list_sessions(offset=0, limit=2)
    assert ([r.session_id for r in listed], total) == (["a", "c"], 3)
    rest, _ = await engine.list_sessions(offset=2, limit=2)
    assert [r.session_id for r in rest] == ["b"]


async def test_published_frames_reach_subscribed_sessions_in_order(
    engine: Engine, node: RecordingNode
) -> None:
    await engine.subscribe("s1")
    await eventually(engine.ready, "engine ready")
    for n in range(20):
        await engine.publish("s1", f"frame-{n}", exclude="conn-1" if n == 0 else None)
    await eventually(lambda: len(node.frames) == 20, "20 frames")
    assert node.frames[0] == ("s1", "frame-0", "conn-1")
    assert [f for _, f, _ in node.frames] == [f"frame-{n}" for n in range(20)]


async def test_admin_events_flow_only_while_watched(engine: Engine, node: RecordingNode) -> None:
    await eventually(engine.ready, "engine ready")
    assert not engine.events_wanted()
    await engine.subscribe_events()
    assert engine.events_wanted()
    await engine.publish_event("s1", "event-1")
    await eventually(lambda: bool(node.events), "the event")
    assert node.events == [("s1", "event-1")]


async def test_cluster_presence_includes_this_node(engine: Engine, node: RecordingNode) -> None:
    node.local = Presence(2, {"s1": 2}, {"anna": 2})
    presence = await engine.cluster_presence()
    assert (presence.connections, presence.sessions, presence.users) == (2, {"s1": 2}, {"anna": 2})
