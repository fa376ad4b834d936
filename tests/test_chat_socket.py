"""The chat WebSocket against a real server: every message type and every error path."""

from __future__ import annotations

import json

import pytest
from tornado.websocket import websocket_connect

from chatbuddy.settings import Settings
from chatbuddy.wire.client_frames import MAX_CONTENT_CHARS
from chatbuddy.wire.server_frames import parse_server_message
from chatbuddy.wire.subprotocol import SUBPROTOCOL
from tests.builders import ENGINE_KINDS, unlimited
from tests.conftest import Connect, Http
from tests.helpers import refused

PRICE_QUESTION = "Mennyi az ára a Samsung Galaxy S24-nek?"


@pytest.fixture(params=ENGINE_KINDS)
def engine_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on every engine."""
    return str(request.param)


# -- connecting ---------------------------------------------------------------


async def test_a_new_session_is_greeted_with_a_token(connect: Connect) -> None:
    client = await connect("shop-1", user_id="anna")
    greeting = await client.greeting()
    assert greeting["session_id"] == "shop-1"
    assert greeting["user_id"] == "anna"
    assert greeting["resumed"] is False
    assert greeting["last_message_id"] is None
    assert greeting["connection_id"].startswith("conn_")
    assert len(greeting["session_token"]) >= 32


async def test_every_server_frame_parses_as_a_protocol_model(connect: Connect) -> None:
    client = await connect("s-models")
    await client.send(type="ping")
    await client.send(type="session_info")
    await client.send(type="history")
    await client.send(type="chat_message", session_id="s-models", content="hello")
    await client.send(type="bogus")
    seen: set[str] = set()
    while not {"chat_response", "error"} <= seen:
        raw = json.dumps(await client.receive())
        seen.add(parse_server_message(raw).type)
    assert seen == {
        "connection_established",
        "pong",
        "session_info",
        "history",
        "chat_response_chunk",
        "chat_response",
        "error",
    }


@pytest.mark.parametrize(
    ("session_id", "query"),
    [
        ("has space", {}),
        ("x" * 129, {}),
        ("semi;colon", {}),
        ("ok-session", {"user_id": "bad/user"}),
        ("ok-session", {"user_id": ""}),
    ],
)
async def test_a_malformed_id_is_refused_with_400_before_any_socket_opens(
    port: int, session_id: str, query: dict[str, str]
) -> None:
    error = await refused(port, session_id, **query)
    assert (error.status, error.error_type) == (400, "invalid_identifier")


async def test_an_existing_session_needs_its_token(connect: Connect, port: int) -> None:
    owner = await connect("private", user_id="anna")
    await owner.greeting()
    error = await refused(port, "private")
    assert (error.status, error.error_type) == (403, "session_access_denied")
    wrong = await refused(port, "private", session_token="not-the-token")
    assert wrong.status == 403


async def test_the_token_resumes_the_session_with_its_history(connect: Connect) -> None:
    first = await connect("resume-me", user_id="anna")
    token = (await first.greeting())["session_token"]
    reply = await first.chat("resume-me", "hello")
    first.close()

    again = await connect("resume-me", session_token=token)
    greeting = await again.greeting()
    assert greeting["resumed"] is True
    assert greeting["user_id"] == "anna"
    assert greeting["session_token"] == token
    assert greeting["last_message_id"] == reply["message_id"]


async def test_the_token_travels_in_the_subprotocol_offer_and_is_never_echoed(
    connect: Connect,
) -> None:
    first = await connect("offer-me", user_id="anna")
    token = (await first.greeting())["session_token"]
    first.close()

    again = await connect("offer-me", session_token=token)  # offers chatbuddy.v1 + token
    assert (await again.greeting())["resumed"] is True
    assert again.ws.selected_subprotocol == SUBPROTOCOL
    assert again.ws.headers is not None
    assert again.ws.headers["Sec-WebSocket-Protocol"] == SUBPROTOCOL  # the token is not echoed


async def test_the_deprecated_token_in_the_url_still_resumes(connect: Connect, port: int) -> None:
    first = await connect("old-page", user_id="anna")
    token = (await first.greeting())["session_token"]
    first.close()
    url = f"ws://127.0.0.1:{port}/ws/chat/old-page?session_token={token}"
    old = await websocket_connect(url)
    greeting = json.loads(await old.read_message() or "{}")
    assert greeting["data"]["resumed"] is True
    old.close()


async def test_a_token_offered_without_the_subprotocol_is_refused_with_a_reason(
    http: Http,
) -> None:
    first = await http.fetch(
        "/ws/chat/no-proto",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": "chatbuddy.token.abc",
        },
        raise_error=False,
    )
    assert first.code == 400
    assert json.loads(first.body)["error"]["type"] == "subprotocol_required"


async def test_a_wrong_token_in_the_offer_is_refused(connect: Connect, port: int) -> None:
    owner = await connect("guarded", user_id="anna")
    await owner.greeting()
    wrong = await refused(port, "guarded", session_token="not-the-token")
    assert (wrong.status, wrong.error_type) == (403, "session_access_denied")


async def test_another_user_cannot_take_over_a_session_even_with_its_token(
    connect: Connect, port: int
) -> None:
    owner = await connect("anna-only", user_id="anna")
    token = (await owner.greeting())["session_token"]
    error = await refused(port, "anna-only", user_id="mallory", session_token=token)
    assert error.status == 403


async def test_a_plain_http_get_on_the_socket_gets_a_json_426(http: Http) -> None:
    response = await http.fetch("/ws/chat/abc", raise_error=False)
    assert response.code == 426
    assert json.loads(response.body)["error"]["type"] == "upgrade_required"


# -- chat ---------------------------------------------------------------------


async def test_a_price_question_gets_a_streamed_reply_naming_the_price(connect: Connect) -> None:
    client = await connect("price", user_id="anna")
    await client.greeting()
    await client.send(type="chat_message", session_id="price", content=PRICE_QUESTION)
    chunks, response = await client.reply()
    assert len(chunks) >= 2
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    assert {c["message_id"] for c in chunks} == {response["message_id"]}
    assert "".join(c["delta"] for c in chunks) == response["content"]
    assert "349\u202f990\u202fFt" in response["content"]
    assert response["agent_type"] == "coordinator"
    assert response["metadata"]["agent"] == "product"
    assert response["metadata"]["processing_time"] >= 0
    assert 0.9 <= response["confidence"] <= 1.0
    assert response["in_reply_to"] < response["message_id"]


async def test_messages_are_answered_in_the_order_they_were_sent(connect: Connect) -> None:
    client = await connect("ordered")
    await client.greeting()
    questions = ["Hol tart a 10042 rendelésem?", "Where is order 10043?", PRICE_QUESTION]
    for text in questions:
        await client.send(type="chat_message", session_id="ordered", content=text)
    replies = [(await client.reply())[1] for _ in questions]
    assert "10042" in replies[0]["content"]
    assert "10043" in replies[1]["content"]
    assert "349" in replies[2]["content"]
    ids = [r["message_id"] for r in replies]
    assert ids == sorted(ids)


async def test_history_returns_stored_messages_oldest_first(connect: Connect) -> None:
    client = await connect("hist", user_id="anna")
    await client.greeting()
    first = await client.chat("hist", "Szia!", client_message_id="c-1")
    second = await client.chat("hist", PRICE_QUESTION)

    await client.send(type="history")
    history = (await client.expect("history"))["data"]
    messages = history["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [m["id"] for m in messages] == sorted(m["id"] for m in messages)
    assert messages[0]["content"] == "Szia!"
    assert messages[0]["client_message_id"] == "c-1"
    assert messages[0]["user_id"] == "anna"
    assert messages[1]["id"] == first["message_id"]
    assert messages[1]["in_reply_to"] == messages[0]["id"]
    assert history["last_message_id"] == second["message_id"]
    assert history["has_more"] is False

    await client.send(type="history", after=messages[1]["id"], limit=1)
    page = (await client.expect("history"))["data"]
    assert [m["id"] for m in page["messages"]] == [messages[2]["id"]]
    assert page["has_more"] is True


async def test_text_is_stored_as_written_after_nfc_and_control_removal(connect: Connect) -> None:
    client = await connect("verbatim")
    await client.greeting()
    text = "SELECT * FROM users; <b>drop</b> table\tok\nsecond line e\u0301\x1b[31m"
    await client.chat("verbatim", text)
    await client.send(type="history")
    stored = (await client.expect("history"))["data"]["messages"][0]["content"]
    assert stored == "SELECT * FROM users; <b>drop</b> table\tok\nsecond line \u00e9[31m"


async def test_two_connections_of_one_session_both_see_messages_and_replies(
    connect: Connect,
) -> None:
    tab1 = await connect("two-tabs", user_id="anna")
    token = (await tab1.greeting())["session_token"]
    tab2 = await connect("two-tabs", user_id="anna", session_token=token)
    await tab2.greeting()

    await tab1.send(type="chat_message", session_id="two-tabs", content=PRICE_QUESTION)
    echoed = await tab2.expect("user_message")
    assert echoed["data"]["content"] == PRICE_QUESTION
    assert echoed["data"]["role"] == "user"
    _, on_tab2 = await tab2.reply()
    _, on_tab1 = await tab1.reply()  # the sender gets no copy of its own message
    assert on_tab1 == on_tab2

    await tab1.send(type="session_info")
    info = (await tab1.expect("session_info"))["data"]
    assert info["connections"] == 2


async def test_ping_is_answered_with_pong_echoing_the_client_timestamp(connect: Connect) -> None:
    client = await connect("pinger")
    await client.greeting()
    await client.send(type="ping", timestamp="2024-01-15T10:30:00Z")
    pong = await client.expect("pong")
    assert pong["data"]["client_timestamp"] == "2024-01-15T10:30:00Z"
    assert pong["data"]["timestamp"].endswith("Z")


async def test_session_info_describes_the_session(connect: Connect) -> None:
    client = await connect("info", user_id="anna")
    await client.greeting()
    await client.chat("info", "hello")
    await client.send(type="session_info")
    info = (await client.expect("session_info"))["data"]
    assert info["session_id"] == "info"
    assert info["user_id"] == "anna"
    assert info["message_count"] == 2
    assert info["connections"] == 1
    assert info["client_info"]["ip_address"] == "127.0.0.1"
    for key in ("created_at", "connected_at", "last_activity"):
        assert info[key].endswith("Z")


# -- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "error_type", "request_type"),
    [
        ("{not json", "invalid_json", None),
        ("[1, 2]", "invalid_json", None),
        ('"a string"', "invalid_json", None),
        ("{}", "missing_type", None),
        ('{"type": "dance"}', "unknown_type", None),
        ('{"type": 7}', "unknown_type", None),
        ('{"type": "chat_message", "content": "hi"}', "missing_session", "chat_message"),
        ('{"type": "chat_message", "session_id": "bad-input"}', "validation_error", "chat_message"),
        (
            '{"type": "chat_message", "session_id": "bad-input", "content": 5}',
            "validation_error",
            "chat_message",
        ),
        (
            '{"type": "chat_message", "session_id": "bad-input", "content": "   \\n\\t "}',
            "empty_message",
            "chat_message",
        ),
        (
            '{"type": "chat_message", "session_id": "bad-input", "content": "\\u0000\\u001b"}',
            "empty_message",
            "chat_message",
        ),
        (
            '{"type": "chat_message", "session_id": "other", "content": "hi"}',
            "session_mismatch",
            "chat_message",
        ),
        ('{"type": "history", "limit": 0}', "validation_error", "history"),
        ('{"type": "history", "limit": "5"}', "validation_error", "history"),
    ],
)
async def test_bad_input_gets_one_error_and_the_connection_keeps_working(
    connect: Connect, frame: str, error_type: str, request_type: str | None
) -> None:
    client = await connect("bad-input")
    await client.greeting()
    await client.send_raw(frame)
    error = await client.error()
    assert error["error_type"] == error_type
    assert error.get("request_type") == request_type
    assert error["error_message"]
    assert "Traceback" not in error["error_message"]

    await client.send(type="ping")
    await client.expect("pong")


async def test_content_over_the_limit_is_refused_with_its_length(connect: Connect) -> None:
    client = await connect("long")
    await client.greeting()
    await client.send(type="chat_message", session_id="long", content="x" * MAX_CONTENT_CHARS)
    await client.reply()  # exactly at the limit is fine
    await client.send(type="chat_message", session_id="long", content="x" * (MAX_CONTENT_CHARS + 1))
    error = await client.error()
    assert error["error_type"] == "message_too_long"
    assert str(MAX_CONTENT_CHARS + 1) in error["error_message"]


async def test_a_binary_frame_is_refused_and_the_connection_keeps_working(
    connect: Connect,
) -> None:
    client = await connect("binary")
    await client.greeting()
    await client.send_raw(b'{"type": "ping"}')
    assert (await client.error())["error_type"] == "unsupported_frame"
    await client.send(type="ping")
    await client.expect("pong")


async def test_an_error_message_names_the_bad_value(connect: Connect) -> None:
    client = await connect("named")
    await client.greeting()
    await client.send(type="dance")
    assert "'dance'" in (await client.error())["error_message"]
    await client.send(type="chat_message", session_id="elsewhere", content="hi")
    assert "'elsewhere'" in (await client.error())["error_message"]


async def test_a_refused_chat_message_is_named_by_its_client_message_id(
    connect: Connect,
) -> None:
    client = await connect("which-one")
    await client.greeting()
    await client.send(
        type="chat_message", session_id="elsewhere", content="hi", client_message_id="web-7"
    )
    error = await client.error()
    assert (error["error_type"], error["client_message_id"]) == ("session_mismatch", "web-7")


async def test_a_frame_over_the_size_limit_closes_the_connection_with_1009(
    connect: Connect,
) -> None:
    client = await connect("huge")
    await client.greeting()
    await client.send_raw("x" * (65 * 1024))
    assert await client.closed() == 1009


async def test_a_frame_just_under_the_limit_is_read_whole_across_many_socket_reads(
    connect: Connect,
) -> None:
    client = await connect("big-but-fine")
    await client.greeting()
    padding = " " * (64 * 1024 - 100)  # the server reads 4 KiB at a time
    await client.send_raw('{"type": "ping",' + padding + '"timestamp": "t-1"}')
    pong = await client.expect("pong")
    assert pong["data"]["client_timestamp"] == "t-1"


async def test_a_tab_that_reloads_at_once_still_hears_the_other_tab(connect: Connect) -> None:
    """Unsubscribing the closed tab must not deafen the session for its successor."""
    steady = await connect("reloader", user_id="anna")
    token = (await steady.greeting())["session_token"]
    steady.close()  # the only tab goes, so the node lets go of the session...
    for attempt in range(5):
        tab = await connect("reloader", session_token=token)  # ...and it comes right back
        await tab.greeting()
        if attempt < 4:
            tab.close()
    other = await connect("reloader", session_token=token)
    await other.greeting()
    await other.send(type="chat_message", session_id="reloader", content="still there?")
    heard = (await tab.expect("user_message"))["data"]
    assert heard["content"] == "still there?"
    _, reply = await tab.reply()
    assert reply["in_reply_to"] == heard["id"]


class TestLongHistories:
    @pytest.fixture
    def settings(self) -> Settings:
        return unlimited(port=0, agent="echo")

    async def test_history_pages_carry_a_bounded_number_of_bytes_and_page_on(
        self, connect: Connect
    ) -> None:
        client = await connect("long-history")
        await client.greeting()
        text = "x" * 4000
        for _ in range(45):  # 90 stored messages of ~4 KB: ~370 KB, more than one page holds
            await client.chat("long-history", text)
        seen: list[int] = []
        after = 0
        while True:
            await client.send(type="history", after=after)
            page = (await client.expect("history"))["data"]
            assert sum(len(m["content"]) for m in page["messages"]) <= 256 * 1024
            seen += [m["id"] for m in page["messages"]]
            if not page["has_more"]:
                break
            after = page["messages"][-1]["id"]
        assert seen == list(range(1, 91))
