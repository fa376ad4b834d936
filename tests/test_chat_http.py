"""POST /api/v1/chat against a real server: the original API's shapes, the socket's rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse

from chatbuddy.agents import AgentReply, AgentRequest
from chatbuddy.settings import Settings
from tests.builders import ENGINE_KINDS, unlimited
from tests.conftest import ADMIN_TOKEN, Connect, Http
from tests.helpers import refused

PRICE_QUESTION = "Mennyi az ára a Samsung Galaxy S24-nek?"


@pytest.fixture(params=ENGINE_KINDS)
def engine_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both engines."""
    return str(request.param)


@pytest.fixture
def settings() -> Settings:
    return unlimited(port=0, admin_token=ADMIN_TOKEN)


async def post(
    http: Http, body: dict[str, Any] | str, token: str | None = None, **headers: str
) -> HTTPResponse:
    headers = {"Content-Type": "application/json", **headers}
    if token is not None:
        headers["X-Session-Token"] = token
    text = body if isinstance(body, str) else json.dumps(body)
    return await http.fetch("/api/v1/chat", method="POST", body=text, headers=headers)


def error_of(response: HTTPResponse) -> tuple[int, str]:
    return response.code, json.loads(response.body)["error"]["type"]


async def test_a_message_opens_a_session_and_gets_the_reply_in_the_original_shape(
    http: Http, connect: Connect, port: int
) -> None:
    response = await post(http, {"session_id": "h-new", "message": PRICE_QUESTION})
    assert response.code == 200
    reply = json.loads(response.body)
    assert set(reply) == {
        "session_id",
        "message",
        "agent_used",
        "confidence",
        "metadata",
        "timestamp",
    }
    assert reply["session_id"] == "h-new"
    assert "349\u202f990\u202fFt" in reply["message"]
    assert reply["agent_used"] == "product"
    assert 0 < reply["confidence"] <= 1
    assert reply["metadata"]["agent_type"] == "coordinator"
    assert reply["metadata"]["in_reply_to"] == 1
    assert reply["timestamp"].endswith("Z")

    # The session is the caller's: its token came in the header, and opens the socket.
    token = response.headers["X-Session-Token"]
    assert len(token) >= 32
    assert (await refused(port, "h-new")).status == 403
    tab = await connect("h-new", session_token=token)
    assert (await tab.greeting())["resumed"] is True
    await tab.send(type="history")
    history = (await tab.expect("history"))["data"]["messages"]
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", PRICE_QUESTION),
        ("assistant", reply["message"]),
    ]


async def test_the_token_continues_the_session_and_nothing_else_does(http: Http) -> None:
    first = await post(http, {"session_id": "h-mine", "message": "Szia!"})
    token = first.headers["X-Session-Token"]
    again = await post(http, {"session_id": "h-mine", "message": "Hol a rendelésem?"}, token)
    assert again.code == 200
    assert again.headers["X-Session-Token"] == token
    assert json.loads(again.body)["metadata"]["in_reply_to"] == 3

    assert error_of(await post(http, {"session_id": "h-mine", "message": "hi"})) == (
        403,
        "session_access_denied",
    )
    wrong = await post(http, {"session_id": "h-mine", "message": "hi"}, "not-the-token")
    assert error_of(wrong) == (403, "session_access_denied")
    assert "X-Session-Token" not in wrong.headers
    other_user = {"session_id": "h-mine", "message": "hi", "user_id": "mallory"}
    assert error_of(await post(http, other_user, token)) == (403, "session_access_denied")


async def test_the_messages_reach_the_open_tabs_of_the_session(
    http: Http, connect: Connect
) -> None:
    tab = await connect("h-tabs")
    token = (await tab.greeting())["session_token"]
    response = await post(http, {"session_id": "h-tabs", "message": PRICE_QUESTION}, token)
    assert response.code == 200
    said = await tab.expect("user_message")
    assert said["data"]["content"] == PRICE_QUESTION
    chunks, answered = await tab.reply()
    assert chunks  # streamed to the tab as it was produced
    assert answered["content"] == json.loads(response.body)["message"]
    assert answered["in_reply_to"] == said["data"]["id"]


async def test_bad_requests_get_the_error_a_socket_would_get(http: Http) -> None:
    async def refusal(body: dict[str, Any] | str, **headers: str) -> tuple[int, str]:
        return error_of(await post(http, body, **headers))

    assert await refusal({"session_id": "h-bad", "message": "  "}) == (400, "empty_message")
    too_long = {"session_id": "h-bad", "message": "x" * 4001}
    assert await refusal(too_long) == (400, "message_too_long")
    assert await refusal({"session_id": "bad id!", "message": "hi"}) == (
        400,
        "invalid_identifier",
    )
    assert await refusal({"message": "hi"}) == (400, "validation_error")
    assert await refusal({"session_id": "h-bad", "message": 5}) == (400, "validation_error")
    assert await refusal("{not json") == (400, "invalid_json")
    as_text = {"Content-Type": "text/plain"}
    assert await refusal({"session_id": "h-bad", "message": "hi"}, **as_text) == (
        415,
        "unsupported_media_type",
    )


async def test_a_resent_client_message_id_is_answered_once(http: Http, connect: Connect) -> None:
    body = {"session_id": "h-once", "message": "Szia!", "client_message_id": "cm-1"}
    first = await post(http, body)
    token = first.headers["X-Session-Token"]
    second = await post(http, body, token)
    assert second.code == 200
    assert json.loads(second.body)["message"] == json.loads(first.body)["message"]
    tab = await connect("h-once", session_token=token)
    assert (await tab.greeting())["last_message_id"] == 2  # stored once, answered once


async def test_health_is_an_alias_of_healthz(http: Http) -> None:
    response = await http.fetch("/health")
    assert (response.code, json.loads(response.body)) == (200, {"status": "ok"})


class TestTheRateLimit:
    @pytest.fixture
    def settings(self) -> Settings:
        # Two at once, then one every 100 s: the third request is over the limit.
        return unlimited(
            port=0, admin_token=ADMIN_TOKEN, agent="echo", rate_limit=0.01, rate_burst=2
        )

    @pytest.fixture
    def engine_kind(self) -> str:
        return "memory"

    async def test_requests_of_one_session_share_a_connections_budget(self, http: Http) -> None:
        first = await post(http, {"session_id": "h-fast", "message": "1"})
        token = first.headers["X-Session-Token"]
        second = await post(http, {"session_id": "h-fast", "message": "2"}, token)
        assert (first.code, second.code) == (200, 200)
        limited = await post(http, {"session_id": "h-fast", "message": "3"}, token)
        assert error_of(limited) == (429, "rate_limited")
        assert limited.headers["Retry-After"] == "1"
        assert limited.headers["X-Session-Token"] == token
        # Another session has a budget of its own.
        assert (await post(http, {"session_id": "h-slow", "message": "hi"})).code == 200


class TestAnAgentThatFails:
    class Failing:
        name = "failing"
        history_wanted = 0

        async def respond(self, request: AgentRequest) -> AgentReply:
            raise RuntimeError("the model is down")

    @pytest.fixture
    def agent(self) -> Failing:
        return self.Failing()

    @pytest.fixture
    def engine_kind(self) -> str:
        return "memory"

    async def test_the_caller_gets_a_502_and_keeps_the_session(self, http: Http) -> None:
        response = await post(http, {"session_id": "h-fail", "message": "hi"})
        assert error_of(response) == (502, "agent_error")
        token = response.headers["X-Session-Token"]
        again = await post(http, {"session_id": "h-fail", "message": "hi"}, token)
        assert error_of(again) == (502, "agent_error")  # admitted with the token it was given
