"""One contract, every engine: the memory, SQLite and Redis pairs behave alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from chatbuddy.engine import Engine, FrameAround, Presence
from chatbuddy.errors import SessionNotFound, SessionReplaced
from chatbuddy.records import Note, StoredMessage, utcnow
from chatbuddy.wire.close_codes import Close
from tests.builders import ENGINE_KINDS, build_engine, record, reply, user_message
from tests.doubles import RecordingNode
from tests.helpers import eventually

HISTORY_LIMIT = 5


@pytest.fixture
def node() -> RecordingNode:
    return RecordingNode()


@pytest.fixture(params=ENGINE_KINDS)
async def engine(
    request: pytest.FixtureRequest, node: RecordingNode, tmp_path: Path
) -> AsyncIterator[Engine]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    built = build_engine(
        request.param, redis_url=redis_url, folder=tmp_path, history_limit=HISTORY_LIMIT
    )
    await built.start(node)
    yield built
    await built.close()


async def test_a_session_id_can_be_created_once(engine: Engine) -> None:
    assert await engine.store.create_session(record())
    assert not await engine.store.create_session(record(token="other"))
    stored = await engine.store.get_session("s1")
    assert stored is not None
    assert stored.user_id == "anna"
    assert stored.client_info.user_agent == "pytest"
    assert stored.token_matches("tok")
    assert not stored.token_matches("other")
    assert await engine.store.get_session("nobody") is None


async def test_touching_marks_activity_and_connection(engine: Engine) -> None:
    created = record()
    await engine.store.create_session(created)
    touched = await engine.store.touch_session("s1", connected=True)
    assert touched.last_activity >= created.last_activity
    assert touched.connected_at == touched.last_activity
    with pytest.raises(SessionNotFound):
        await engine.store.touch_session("nobody")


async def test_user_messages_get_growing_ids_and_reserve_their_replys(engine: Engine) -> None:
    await engine.store.create_session(record())
    first = await engine.store.add_user_message("s1", user_message("one"))
    second = await engine.store.add_user_message("s1", user_message("two"))
    assert (first.message.id, first.reply_id) == (1, 2)
    assert (second.message.id, second.reply_id) == (3, 4)
    assert first.message.content == "one"
    assert not first.duplicate


async def test_a_reply_stored_late_keeps_id_order(engine: Engine) -> None:
    await engine.store.create_session(record())
    first = await engine.store.add_user_message("s1", user_message("one"))
    await engine.store.add_user_message("s1", user_message("two"))
    assert first.reply_id is not None
    await engine.store.add_reply("s1", reply(first.reply_id, first.message.id))
    messages, _ = await engine.store.history("s1", after=None, limit=10)
    assert [(m.id, m.role) for m in messages] == [(1, "user"), (2, "assistant"), (3, "user")]
    assert messages[1].metadata == {"processing_time": 0.001, "agent": "general"}


async def test_an_announcement_is_published_by_the_store_or_left_to_the_caller(
    engine: Engine, node: RecordingNode
) -> None:
    await engine.store.create_session(record())
    await engine.bus.subscribe("s1")
    await eventually(engine.ready, "engine ready")
    around = FrameAround(lambda: ("<frame>", "</frame>"), exclude="sender")
    added = await engine.store.add_user_message("s1", user_message("one"), announce=around)
    if not added.published:
        await engine.bus.publish("s1", around.wrap(added.message), exclude="sender")
    assert added.reply_id is not None
    answer = reply(added.reply_id, added.message.id)
    if not await engine.store.add_reply("s1", answer, announce="reply-frame"):
        await engine.bus.publish("s1", "reply-frame")

    await eventually(lambda: len(node.frames) == 2, "the message and the reply")
    (sid, frame, exclude), second = node.frames
    assert (sid, exclude) == ("s1", "sender")
    assert frame.startswith("<frame>")
    assert frame.endswith("</frame>")
    inside = frame.removeprefix("<frame>").removesuffix("</frame>")
    announced = StoredMessage.model_validate_json(inside)
    assert announced == added.message
    assert second == ("s1", "reply-frame", None)


async def test_history_pages_forward_and_shows_the_latest(engine: Engine) -> None:
    await engine.store.create_session(record())
    for n in range(4):
        await engine.store.add_user_message("s1", user_message(f"m{n}"))  # ids 1, 3, 5, 7
    page, more = await engine.store.history("s1", after=1, limit=2)
    assert ([m.id for m in page], more) == ([3, 5], True)
    page, more = await engine.store.history("s1", after=5, limit=2)
    assert ([m.id for m in page], more) == ([7], False)
    latest, more = await engine.store.history("s1", after=None, limit=2)
    assert ([m.id for m in latest], more) == ([5, 7], False)


async def test_history_is_capped_but_counts_every_message(engine: Engine) -> None:
    await engine.store.create_session(record())
    for n in range(HISTORY_LIMIT + 2):
        await engine.store.add_user_message("s1", user_message(f"m{n}"))
    messages, _ = await engine.store.history("s1", after=None, limit=100)
    assert len(messages) == HISTORY_LIMIT
    assert messages[0].content == "m2"
    paged, _ = await engine.store.history("s1", after=0, limit=100)
    assert paged == messages
    stored = await engine.store.get_session("s1")
    assert stored is not None
    assert stored.message_count == HISTORY_LIMIT + 2
    assert stored.last_message_id == messages[-1].id


async def test_a_resent_client_message_is_stored_once(engine: Engine) -> None:
    await engine.store.create_session(record())
    first = await engine.store.add_user_message("s1", user_message("hi", client_message_id="c-1"))
    again = await engine.store.add_user_message("s1", user_message("hi", client_message_id="c-1"))
    other = await engine.store.add_user_message("s1", user_message("hi", client_message_id="c-2"))
    assert again.duplicate
    assert again.message.id == first.message.id
    assert again.message.content == "hi"
    assert not other.duplicate
    messages, _ = await engine.store.history("s1", after=None, limit=10)
    assert [m.client_message_id for m in messages] == ["c-1", "c-2"]


async def test_writing_to_a_missing_session_raises(engine: Engine) -> None:
    with pytest.raises(SessionNotFound):
        await engine.store.add_user_message("ghost", user_message())
    with pytest.raises(SessionNotFound):
        await engine.store.add_reply("ghost", reply(2, 1), announce="x")
    with pytest.raises(SessionNotFound):
        await engine.store.history("ghost", after=None, limit=1)
    with pytest.raises(SessionNotFound):
        await engine.store.history("ghost", after=None, limit=1, touch=False)


async def test_sessions_are_listed_most_recently_active_first(engine: Engine) -> None:
    for sid in ("a", "b", "c"):
        await engine.store.create_session(record(sid))
    await engine.store.touch_session("a")
    listed, total = await engine.store.list_sessions(offset=0, limit=2)
    assert ([r.session_id for r in listed], total) == (["a", "c"], 3)
    rest, _ = await engine.store.list_sessions(offset=2, limit=2)
    assert [r.session_id for r in rest] == ["b"]


async def test_published_frames_reach_subscribed_sessions_in_order(
    engine: Engine, node: RecordingNode
) -> None:
    await engine.bus.subscribe("s1")
    await eventually(engine.ready, "engine ready")
    for n in range(20):
        await engine.bus.publish("s1", f"frame-{n}", exclude="conn-1" if n == 0 else None)
    await eventually(lambda: len(node.frames) == 20, "20 frames")
    assert node.frames[0] == ("s1", "frame-0", "conn-1")
    assert [f for _, f, _ in node.frames] == [f"frame-{n}" for n in range(20)]


async def test_after_a_flush_every_frame_published_before_it_has_arrived(
    engine: Engine, node: RecordingNode
) -> None:
    await engine.bus.subscribe("s1")
    await eventually(engine.ready, "engine ready")
    for n in range(50):
        await engine.bus.publish("s1", f"frame-{n}")
    await engine.bus.flush()  # no waiting for the frames here: flush is the wait
    assert [f for _, f, _ in node.frames] == [f"frame-{n}" for n in range(50)]


async def test_admin_events_flow_only_while_watched(engine: Engine, node: RecordingNode) -> None:
    await eventually(engine.ready, "engine ready")
    assert not engine.bus.events_wanted()
    await engine.bus.subscribe_events()
    assert engine.bus.events_wanted()
    await engine.bus.publish_event("s1", "event-1")
    await eventually(lambda: bool(node.events), "the event")
    assert node.events == [("s1", "event-1")]


async def test_control_messages_reach_this_node_without_a_subscription_to_the_session(
    engine: Engine, node: RecordingNode
) -> None:
    await eventually(engine.ready, "engine ready")
    await engine.bus.publish_control("s1", "cancel 7")
    await engine.bus.publish_control("s2", "line one\nline two")
    await eventually(lambda: len(node.controls) == 2, "both control messages")
    assert node.controls == [("s1", "cancel 7"), ("s2", "line one\nline two")]
    assert node.frames == []  # not frames for the session's tabs


async def test_cluster_presence_includes_this_node(engine: Engine, node: RecordingNode) -> None:
    node.local = Presence(2, {"s1": 2}, {"anna": 2})
    presence = await engine.bus.cluster_presence()
    assert (presence.connections, presence.sessions, presence.users) == (2, {"s1": 2}, {"anna": 2})


async def test_a_connection_to_an_earlier_life_of_a_session_can_neither_read_nor_write(
    engine: Engine,
) -> None:
    await engine.store.create_session(record())
    current = (await engine.store.get_session("s1")).incarnation  # type: ignore[union-attr]
    await engine.store.add_user_message("s1", user_message("mine"), incarnation=current)
    for call in (
        engine.store.add_user_message("s1", user_message("x"), incarnation="earlier"),
        engine.store.add_reply("s1", reply(2, 1), incarnation="earlier"),
        engine.store.history("s1", after=None, limit=10, incarnation="earlier"),
        engine.store.touch_session("s1", incarnation="earlier"),
    ):
        with pytest.raises(SessionReplaced):
            await call
    messages, _ = await engine.store.history("s1", after=None, limit=10)
    assert [m.content for m in messages] == ["mine"]


async def test_open_tabs_keep_their_sessions_alive_and_learn_of_those_that_ended(
    engine: Engine,
) -> None:
    await engine.store.create_session(record("here"))
    current = (await engine.store.get_session("here")).incarnation  # type: ignore[union-attr]
    gone = await engine.store.keep_alive([("here", current), ("here", "earlier"), ("lost", "x")])
    assert gone == [("here", True), ("lost", False)]
    assert await engine.store.count_sessions() == 1


async def test_a_resend_gets_the_stored_reply_or_is_pending_or_is_answered_again(
    engine: Engine,
) -> None:
    await engine.store.create_session(record())
    first = await engine.store.add_user_message("s1", user_message("q", client_message_id="c1"))
    assert first.reply_id == 2
    while_answering = await engine.store.add_user_message(
        "s1", user_message("q", client_message_id="c1")
    )
    assert (while_answering.resent, while_answering.reply_id) == (True, None)  # it follows
    await engine.store.release("s1", 2)  # the producer failed
    again = await engine.store.add_user_message("s1", user_message("q", client_message_id="c1"))
    assert (again.resent, again.reply_id, again.message.id) == (True, 2, 1)  # answer again
    await engine.store.add_reply("s1", reply(2, 1, "the answer"))
    answered = await engine.store.add_user_message("s1", user_message("q", client_message_id="c1"))
    assert answered.reply is not None
    assert (answered.reply_id, answered.reply.content) == (None, "the answer")
    messages, _ = await engine.store.history("s1", after=None, limit=10)
    assert [m.id for m in messages] == [1, 2]  # stored once, answered once


# -- hand-off to a person: holds, waiting, operator messages, notes, reactions, reads --


def soon(seconds: float = 120) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


async def test_one_operator_at_a_time_holds_a_session_and_the_holder_extends_it(
    engine: Engine,
) -> None:
    store = engine.store
    await store.create_session(record())
    first = await store.take_hold("s1", "Anna", until=soon(60))
    assert (first.taken, first.renewed, first.hold.operator) == (True, False, "Anna")
    refused = await store.take_hold("s1", "Bob", until=soon(60))
    assert (refused.taken, refused.hold.operator) == (False, "Anna")
    assert refused.hold.until == first.hold.until
    again = await store.take_hold("s1", "Anna", until=soon(120))
    assert (again.taken, again.renewed) == (True, True)
    assert again.hold.since == first.hold.since
    assert again.hold.until > first.hold.until
    stored = await store.get_session("s1")
    assert stored is not None
    assert stored.hold == again.hold


async def test_a_hold_ends_when_its_holder_releases_it_and_only_then(engine: Engine) -> None:
    store = engine.store
    await store.create_session(record())
    await store.take_hold("s1", "Anna", until=soon())
    assert await store.release_hold("s1", "Bob") is None
    assert await store.release_hold("s1", "Anna", expired_only=True) is None  # still live
    released = await store.release_hold("s1", "Anna")
    assert released is not None
    assert released.operator == "Anna"
    assert await store.release_hold("s1") is None
    assert (await store.take_hold("s1", "Bob", until=soon())).taken


async def test_a_hold_that_ran_out_is_ended_once_and_frees_the_session(engine: Engine) -> None:
    store = engine.store
    for sid in ("s1", "s2"):
        await store.create_session(record(sid))
    await store.take_hold("s1", "Anna", until=utcnow() - timedelta(seconds=1))
    await store.take_hold("s2", "Anna", until=soon())
    assert [(sid, hold.operator) for sid, hold in await store.end_expired_holds()] == [
        ("s1", "Anna")
    ]
    assert await store.end_expired_holds() == []
    stored = await store.get_session("s1")
    assert stored is not None
    assert stored.hold is None
    assert (await store.take_hold("s1", "Bob", until=soon())).taken


async def test_a_message_stored_while_held_says_who_holds_the_session(engine: Engine) -> None:
    store = engine.store
    await store.create_session(record())
    free = await store.add_user_message("s1", user_message("one", client_message_id="c1"))
    assert free.hold is None
    await store.take_hold("s1", "Anna", until=soon())
    held = await store.add_user_message("s1", user_message("two"))
    assert held.hold is not None
    assert held.hold.operator == "Anna"
    resent = await store.add_user_message("s1", user_message("one", client_message_id="c1"))
    assert resent.resent
    assert resent.hold is not None


async def test_a_customer_waits_for_a_person_until_an_operator_takes_the_session(
    engine: Engine,
) -> None:
    store = engine.store
    for sid in ("first", "second", "quiet"):
        await store.create_session(record(sid))
    assert await store.request_handoff("first")
    assert await store.request_handoff("second")
    assert not await store.request_handoff("first")  # waits already: the first time is kept
    waiting = await store.waiting(limit=10)
    assert [r.session_id for r in waiting] == ["first", "second"]
    assert waiting[0].waiting_since is not None
    await store.take_hold("first", "Anna", until=soon())
    assert [r.session_id for r in await store.waiting(limit=10)] == ["second"]
    assert not await store.request_handoff("first")  # held: nobody needs to come


async def test_an_operator_message_gets_the_next_id_and_reserves_no_reply(engine: Engine) -> None:
    store = engine.store
    await store.create_session(record())
    asked = await store.add_user_message("s1", user_message("anyone there?"))
    said, _ = await store.add_message(
        "s1",
        StoredMessage(
            id=0, role="operator", name="Anna", content="Hi, Anna here", timestamp=utcnow()
        ),
    )
    assert said.id == 3  # after the user's message (1) and its reserved reply (2)
    after = await store.add_user_message("s1", user_message("thanks"))
    assert (asked.message.id, after.message.id, after.reply_id) == (1, 4, 5)
    messages, _ = await store.history("s1", after=None, limit=10)
    assert [(m.id, m.role, m.name) for m in messages] == [
        (1, "user", None),
        (3, "operator", "Anna"),
        (4, "user", None),
    ]


async def test_notes_stay_with_the_session_and_out_of_its_history(engine: Engine) -> None:
    store = engine.store
    await store.create_session(record())
    await store.add_note("s1", Note("Anna", "refund approved by Bob", utcnow()))
    await store.add_note("s1", Note("Bob", "call back tomorrow", utcnow()))
    notes = await store.notes("s1")
    assert [(n.operator, n.content) for n in notes] == [
        ("Anna", "refund approved by Bob"),
        ("Bob", "call back tomorrow"),
    ]
    messages, _ = await store.history("s1", after=None, limit=10)
    assert messages == []
    with pytest.raises(SessionNotFound):
        await store.add_note("ghost", Note("Anna", "x", utcnow()))


async def test_a_reaction_is_one_per_reply_changeable_and_counted_by_agent_and_route(
    engine: Engine,
) -> None:
    store = engine.store
    await store.create_session(record())
    asked = await store.add_user_message("s1", user_message("price?"))
    assert asked.reply_id is not None
    await store.add_reply("s1", reply(asked.reply_id, asked.message.id))  # route "general"
    said, _ = await store.add_message(
        "s1", StoredMessage(id=0, role="operator", name="Anna", content="Hi", timestamp=utcnow())
    )
    assert await store.react("s1", asked.message.id, "up", agent="coordinator") is None  # a user's
    assert await store.react("s1", 99, "up", agent="coordinator") is None
    first = await store.react("s1", asked.reply_id, "down", agent="coordinator")
    assert first is not None
    assert (first.before, first.now, first.agent, first.route) == (
        None,
        "down",
        "coordinator",
        "general",
    )
    changed = await store.react("s1", asked.reply_id, "up", agent="coordinator")
    assert changed is not None
    assert (changed.before, changed.now) == ("down", "up")
    await store.react("s1", said.id, "up", agent="coordinator")
    totals = {(t.agent, t.route): (t.up, t.down) for t in await store.reaction_totals()}
    assert totals == {("coordinator", "general"): (1, 0), ("operator", None): (1, 0)}
    messages, _ = await store.history("s1", after=None, limit=10)
    assert [m.reaction for m in messages] == [None, "up", "up"]
    await store.react("s1", said.id, None, agent="coordinator")
    totals = {(t.agent, t.route): (t.up, t.down) for t in await store.reaction_totals()}
    assert totals == {("coordinator", "general"): (1, 0)}


async def test_read_marks_only_move_forward(engine: Engine) -> None:
    store = engine.store
    await store.create_session(record())
    assert await store.mark_read("s1", "customer", 4) == 4
    assert await store.mark_read("s1", "customer", 2) == 4
    assert await store.mark_read("s1", "operator", 3) == 3
    stored = await store.get_session("s1")
    assert stored is not None
    assert (stored.read_by_customer, stored.read_by_operator) == (4, 3)


async def test_an_earlier_life_of_a_session_can_take_no_part_in_a_hand_off(engine: Engine) -> None:
    store = engine.store
    await store.create_session(record())
    operator_says = StoredMessage(id=0, role="operator", name="A", content="x", timestamp=utcnow())
    for call in (
        store.take_hold("s1", "Anna", until=soon(), incarnation="earlier"),
        store.request_handoff("s1", incarnation="earlier"),
        store.add_message("s1", operator_says, incarnation="earlier"),
        store.react("s1", 1, "up", agent="coordinator", incarnation="earlier"),
        store.mark_read("s1", "customer", 1, incarnation="earlier"),
    ):
        with pytest.raises(SessionReplaced):
            await call


async def test_erasing_removes_a_session_or_all_of_a_users_and_nothing_else(
    engine: Engine,
) -> None:
    store = engine.store
    for sid in ("a1", "a2"):
        await store.create_session(record(sid))
        await store.add_user_message(sid, user_message("private", client_message_id="c-1"))
    bob = record("b1")
    bob.user_id = "bob"
    await store.create_session(bob)

    lives = {sid: (await store.get_session(sid)).incarnation for sid in ("a1", "a2")}  # type: ignore[union-attr]
    erased_life = lives["a1"]
    # Each erased session with its incarnation: the caller closes that life's tabs only.
    assert await store.erase(session_id="a1") == [("a1", erased_life)]
    assert await store.get_session("a1") is None
    with pytest.raises(SessionNotFound):
        await store.history("a1", after=None, limit=10)
    assert await store.erase(session_id="a1") == []
    assert await store.erase(user_id="anna") == [("a2", lives["a2"])]
    assert await store.erase(user_id="anna") == []
    assert await store.get_session("b1") is not None
    # The id is free again, with nothing of the erased session in it, and a tab of
    # the erased one can neither read nor write the new one.
    assert await store.create_session(record("a1"))
    again = await store.add_user_message("a1", user_message("new", client_message_id="c-1"))
    assert (again.duplicate, again.message.id) == (False, 1)
    with pytest.raises(SessionReplaced):
        await store.history("a1", after=None, limit=10, incarnation=erased_life)
    assert await store.keep_alive([("a1", erased_life)]) == [("a1", True)]


async def test_an_export_pages_through_every_kept_session_once(engine: Engine) -> None:
    store = engine.store
    ids = [f"x{n}" for n in range(7)]
    for sid in ids:
        await store.create_session(record(sid))
    earlier = record("early", now=utcnow() - timedelta(seconds=30))
    await store.create_session(earlier)
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await store.export_page(
            after=cursor, limit=3, since=utcnow() - timedelta(seconds=10)
        )
        seen += [r.session_id for r in page]
        if cursor is None:
            break
    assert sorted(seen) == ids
    everything, _ = await store.export_page(after=None, limit=100)
    assert "early" in {r.session_id for r in everything}


async def test_closing_a_session_reaches_the_nodes_with_its_tabs(
    engine: Engine, node: RecordingNode
) -> None:
    await engine.bus.subscribe("s1")
    await eventually(engine.ready, "engine ready")
    await engine.bus.close_session("s1", Close.SESSION_DELETED, "session deleted")
    await engine.bus.close_session("s1", Close.SESSION_DELETED, "session deleted", only="0a1b")
    await eventually(lambda: len(node.closed) == 2, "the orders to close")
    assert node.closed == [
        ("s1", 4003, "session deleted", None),  # every tab of the id
        ("s1", 4003, "session deleted", "0a1b"),  # only those of one life of it
    ]
