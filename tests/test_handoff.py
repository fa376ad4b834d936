"""A person steps in: an operator (through the admin API) and a customer's socket on a
real server, on every engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatbuddy.client.admin import AdminClient, EventStream
from chatbuddy.client.target import Target
from chatbuddy.errors import ClientFailure, Conflict
from chatbuddy.server import Server
from chatbuddy.settings import Settings
from tests.builders import ENGINE_KINDS, unlimited
from tests.conftest import ADMIN_TOKEN, Connect
from tests.helpers import TIMEOUT, ChatClient

SID = "handed-over"


@pytest.fixture(params=ENGINE_KINDS)
def engine_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return unlimited(
        port=0, admin_token=ADMIN_TOKEN, agent="echo", audit_log=str(tmp_path / "audit.log")
    )


@pytest.fixture
def admin(server: Server) -> AdminClient:
    return AdminClient(Target(f"http://127.0.0.1:{server.port}", ADMIN_TOKEN))


@pytest.fixture
async def tail(admin: AdminClient) -> AsyncIterator[EventStream]:
    stream = await admin.watch(SID)
    yield stream
    stream.close()


async def customer(connect: Connect, session_id: str = SID) -> ChatClient:
    client = await connect(session_id, user_id="anna")
    await client.greeting()
    return client


async def frame_of(client: ChatClient, kind: str) -> dict[str, Any]:
    """The data of the next frame of ``kind`` (others on the way are passed over)."""
    while True:
        frame = await client.receive()
        if frame["type"] == kind:
            data: dict[str, Any] = frame["data"]
            return data


async def event_of(stream: EventStream, kind: str) -> dict[str, Any]:
    while True:
        event = await asyncio.wait_for(stream.next(), TIMEOUT)
        if event["type"] == kind:
            return event


async def test_while_an_operator_holds_the_session_the_bot_is_silent_and_they_talk(
    connect: Connect, admin: AdminClient, tail: EventStream
) -> None:
    anna = await customer(connect)
    taken = await admin.take(SID, "Kiss Éva")
    assert taken["hold"]["operator"] == "Kiss Éva"
    assert (await frame_of(anna, "operator_joined"))["operator"] == "Kiss Éva"

    await anna.send(type="chat_message", session_id=SID, content="is anyone there?",
                    client_message_id="c-1")  # fmt: skip
    stored = await anna.expect("user_message")  # the receipt: stored, and no reply follows
    assert stored["data"]["client_message_id"] == "c-1"
    said = await event_of(tail, "user_message")
    assert said["content"] == "is anyone there?"  # the operator reads it

    answer = await admin.say(SID, "Kiss Éva", "Yes, Éva here. How can I help?")
    heard = await anna.expect("operator_message")  # nothing from the bot came before it
    assert heard["data"] == {**heard["data"], "role": "operator", "name": "Kiss Éva"}
    assert heard["data"]["id"] == answer["message"]["id"]

    await anna.send(type="history")
    history = (await anna.expect("history"))["data"]["messages"]
    assert [(m["role"], m.get("name")) for m in history] == [
        ("user", None),
        ("operator", "Kiss Éva"),
    ]


async def test_a_second_operator_is_refused_and_told_who_holds_the_session(
    connect: Connect, admin: AdminClient
) -> None:
    await customer(connect)
    await admin.take(SID, "Anna")
    with pytest.raises(Conflict) as refused:
        await admin.take(SID, "Bob")
    assert "Anna holds session" in refused.value.message
    with pytest.raises(Conflict):
        await admin.say(SID, "Bob", "let me")
    with pytest.raises(Conflict):
        await admin.release(SID, "Bob")


async def test_released_the_bot_answers_again(connect: Connect, admin: AdminClient) -> None:
    anna = await customer(connect)
    await admin.take(SID, "Anna")
    await frame_of(anna, "operator_joined")
    released = await admin.release(SID, "Anna")
    assert released["released"]["operator"] == "Anna"
    left = await frame_of(anna, "operator_left")
    assert left == {"operator": "Anna", "reason": "released"}
    reply = await anna.chat(SID, "hello bot")
    assert reply["content"] == "hello bot"


@pytest.mark.parametrize(
    "settings", [unlimited(port=0, admin_token=ADMIN_TOKEN, agent="echo", operator_grace=1)]
)
async def test_when_the_operator_goes_silent_the_grace_runs_out_and_the_bot_says_it_is_back(
    connect: Connect, admin: AdminClient, tail: EventStream
) -> None:
    anna = await customer(connect)
    await admin.take(SID, "Anna")
    await frame_of(anna, "operator_joined")
    left = await frame_of(anna, "operator_left")  # within the grace and a sweep
    assert left == {"operator": "Anna", "reason": "timeout"}
    assert (await event_of(tail, "operator_left"))["reason"] == "timeout"
    assert (await anna.chat(SID, "still there?"))["content"] == "still there?"
    await admin.take(SID, "Bob")  # and anyone may take it now


async def test_typing_and_read_receipts_go_both_ways(
    connect: Connect, admin: AdminClient, tail: EventStream
) -> None:
    anna = await customer(connect)
    reply = await anna.chat(SID, "hello")
    await admin.take(SID, "Anna")
    await anna.send(type="typing", state="start")
    assert (await event_of(tail, "typing"))["state"] == "start"
    await anna.send(type="read", message_id=reply["message_id"])
    assert (await event_of(tail, "read"))["message_id"] == reply["message_id"]

    await admin.typing(SID, "Anna", True)
    typing = await frame_of(anna, "typing")
    assert typing == {"who": "operator", "name": "Anna", "state": "start"}
    await admin.read(SID, "Anna", reply["in_reply_to"])
    read = await frame_of(anna, "read")
    assert read == {"reader": "operator", "message_id": reply["in_reply_to"], "name": "Anna"}
    summary = (await admin.session(SID))["session"]
    assert (summary["read_by_customer"], summary["read_by_operator"]) == (2, 1)


async def test_a_reaction_is_stored_with_the_reply_shown_in_other_tabs_and_counted(
    connect: Connect, admin: AdminClient
) -> None:
    anna = await customer(connect)
    token = (await admin.session(SID))["session"]["session_id"]
    assert token == SID
    reply = await anna.chat(SID, "hello")
    await anna.send(type="reaction", message_id=reply["message_id"], reaction="down")
    await anna.send(type="reaction", message_id=reply["message_id"], reaction="up")
    await anna.send(type="reaction", message_id=reply["in_reply_to"], reaction="up")
    error = await anna.error()
    assert (error["error_type"], error["request_type"]) == ("validation_error", "reaction")
    await anna.send(type="history")
    messages = (await anna.expect("history"))["data"]["messages"]
    assert [m.get("reaction") for m in messages] == [None, "up"]
    stats = await admin.stats()
    assert stats["reactions"] == [
        {"agent": "echo", "route": "echo", "up": 1, "down": 0, "up_share": 1.0}
    ]


async def test_a_reaction_in_one_tab_shows_in_the_other(connect: Connect, server: Server) -> None:
    first = await connect(SID)
    token = (await first.greeting())["session_token"]
    second = await connect(SID, session_token=token)
    await second.greeting()
    reply = await first.chat(SID, "hello")
    await frame_of(second, "chat_response")
    await first.send(type="reaction", message_id=reply["message_id"], reaction="up")
    assert await frame_of(second, "reaction") == {
        "message_id": reply["message_id"],
        "reaction": "up",
    }


async def test_notes_are_for_operators_only(
    connect: Connect, admin: AdminClient, tail: EventStream
) -> None:
    anna = await customer(connect)
    await anna.chat(SID, "my parcel is late")
    await admin.note(SID, "Anna", "VIP customer, refund approved")
    assert (await event_of(tail, "note"))["content"] == "VIP customer, refund approved"
    transcript = await admin.session(SID)
    assert transcript["notes"][0]["content"] == "VIP customer, refund approved"
    assert "refund" not in json.dumps(transcript["messages"])
    await anna.send(type="history")
    assert "refund" not in json.dumps(await anna.expect("history"))
    reply = await anna.chat(SID, "and now?")  # the agent's context has no note either
    assert "refund" not in reply["content"]
    exported: list[dict[str, Any]] = []
    await admin.export(exported.append)  # an export keeps them, as the admin transcript does
    (line,) = [e for e in exported if e["session"]["session_id"] == SID]
    assert [n["content"] for n in line["notes"]] == ["VIP customer, refund approved"]
    assert "refund" not in json.dumps(line["messages"])


async def test_the_talk_to_a_person_button_puts_the_customer_on_the_waiting_list(
    connect: Connect, admin: AdminClient, tail: EventStream
) -> None:
    anna = await customer(connect)
    await anna.send(type="handoff_request")
    pending = await frame_of(anna, "handoff_pending")
    assert pending["waiting_since"]
    assert (await event_of(tail, "handoff_requested"))["reason"] == "customer_button"
    waiting = (await admin.waiting())["waiting"]
    assert [(w["session_id"], w["user_id"]) for w in waiting] == [(SID, "anna")]
    assert waiting[0]["waited_seconds"] >= 0
    await admin.take(SID, "Anna")
    assert (await admin.waiting())["waiting"] == []
    await anna.send(type="handoff_request")  # held: told who is there
    assert (await frame_of(anna, "operator_joined"))["operator"] == "Anna"


async def test_a_tab_opened_while_held_is_told_who_holds_it(
    connect: Connect, admin: AdminClient
) -> None:
    first = await connect(SID)
    token = (await first.greeting())["session_token"]
    await admin.take(SID, "Anna")
    second = await connect(SID, session_token=token)
    await second.greeting()
    assert (await second.expect("operator_joined"))["data"]["operator"] == "Anna"


async def test_operator_actions_are_audited_without_their_text(
    connect: Connect, admin: AdminClient, server: Server, settings: Settings
) -> None:
    await customer(connect)
    await admin.say(SID, "Anna", "a secret discount code: XYZ")
    await admin.note(SID, "Anna", "note text stays out")
    await admin.release(SID, "Anna")
    server.audit.flush()
    assert settings.audit_log is not None
    log = await asyncio.to_thread(Path(settings.audit_log).read_text, encoding="utf-8")
    records = [json.loads(line) for line in log.splitlines()]
    actions = [(r["action"], r["status"]) for r in records if r["event"] == "operator_action"]
    assert actions == [("say", 201), ("note", 201), ("release", 200)]
    assert "XYZ" not in log
    assert "note text" not in log


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"content": "hi"}, "give 'operator'"),
        ({"operator": "", "content": "hi"}, "1-64 characters"),
        ({"operator": "Anna", "content": "   "}, "the text is empty"),
        ({"operator": "Anna", "content": "x" * 4001}, "the limit is 4000"),
    ],
)
async def test_bad_operator_requests_are_told_what_is_wrong(
    connect: Connect, admin: AdminClient, body: dict[str, str], reason: str
) -> None:
    await customer(connect)
    with pytest.raises(ClientFailure) as refused:
        await admin.request("POST", f"/api/v1/sessions/{SID}/messages", body=body)
    assert refused.value.status == 400
    assert reason in refused.value.message


async def test_an_unknown_session_cannot_be_taken_over(admin: AdminClient) -> None:
    with pytest.raises(ClientFailure) as refused:
        await admin.take("nobody-here", "Anna")
    assert refused.value.status == 404
