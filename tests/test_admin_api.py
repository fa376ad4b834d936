"""The admin API and the event tail: behind the admin token, and what they show."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

from chatbuddy.client.admin import AdminClient, EventStream
from chatbuddy.client.target import Target
from chatbuddy.server import Server
from chatbuddy.wire.events import EVENT_TYPES
from tests.builders import ENGINE_KINDS
from tests.conftest import ADMIN_TOKEN, Connect, Http
from tests.helpers import TIMEOUT


@pytest.fixture(params=ENGINE_KINDS)
def engine_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on every engine."""
    return str(request.param)


ADMIN_PATHS = ["/api/v1/websocket/stats", "/api/v1/sessions", "/api/v1/sessions/some-session"]


async def fetch(client: Http, path: str, headers: dict[str, str] | None = None) -> HTTPResponse:
    response: HTTPResponse = await client.fetch(path, headers=headers or {}, raise_error=False)
    return response


async def admin(client: Http, path: str) -> tuple[int, dict[str, Any]]:
    response = await fetch(client, path, {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    return response.code, json.loads(response.body)


@pytest.mark.parametrize("path", ADMIN_PATHS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong", "not-bearer", "empty"],
)
async def test_admin_endpoints_refuse_requests_without_the_right_token(
    http: Http, path: str, headers: dict[str, str]
) -> None:
    response = await fetch(http, path, headers)
    assert response.code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(response.body)["error"]["type"] == "unauthorized"


async def test_the_session_list_shows_sessions_newest_activity_first(
    http: Http, connect: Connect
) -> None:
    first = await connect("older", user_id="anna")
    await first.greeting()
    await first.chat("older", "hello")
    second = await connect("newer")
    await second.greeting()
    await second.chat("newer", "hello")
    second.close()
    await second.closed()

    code, page = await admin(http, "/api/v1/sessions")
    assert code == 200
    assert [s["session_id"] for s in page["sessions"]] == ["newer", "older"]
    assert page["total"] == 2
    older = page["sessions"][1]
    assert older["user_id"] == "anna"
    assert older["message_count"] == 2
    assert older["connections"] == 1
    assert "token_hash" not in older
    code, one = await admin(http, "/api/v1/sessions?limit=1&offset=1")
    assert [s["session_id"] for s in one["sessions"]] == ["older"]


async def test_bad_paging_is_a_json_400(http: Http) -> None:
    code, body = await admin(http, "/api/v1/sessions?limit=0")
    assert code == 400
    assert "limit must be" in body["error"]["message"]


async def test_one_session_comes_with_its_history(http: Http, connect: Connect) -> None:
    client = await connect("detailed", user_id="anna")
    await client.greeting()
    await client.chat("detailed", "Mennyi az ára a Samsung Galaxy S24-nek?")
    code, doc = await admin(http, "/api/v1/sessions/detailed")
    assert code == 200
    assert doc["session"]["session_id"] == "detailed"
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant"]
    assert "349" in doc["messages"][1]["content"]


async def test_an_unknown_session_is_a_json_404(http: Http) -> None:
    code, body = await admin(http, "/api/v1/sessions/nobody-here")
    assert code == 404
    assert "nobody-here" in body["error"]["message"]


# -- the tail socket ---------------------------------------------------------


async def open_tail(port: int, query: str = "", **headers: str) -> WebSocketClientConnection:
    request = HTTPRequest(f"ws://127.0.0.1:{port}/ws/admin/tail{query}", headers=headers)
    return await asyncio.wait_for(websocket_connect(request), TIMEOUT)


async def watch(port: int, session_id: str | None = None) -> EventStream:
    """The admin client's event stream (every event is validated against the models)."""
    client = AdminClient(Target(f"http://127.0.0.1:{port}", ADMIN_TOKEN))
    return await asyncio.wait_for(client.watch(session_id), TIMEOUT)


async def next_event(tail: EventStream) -> dict[str, Any]:
    return await asyncio.wait_for(tail.next(), TIMEOUT)


@pytest.mark.parametrize("query", ["", "?token=wrong"])
async def test_the_tail_refuses_a_missing_or_wrong_token(port: int, query: str) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await open_tail(port, query)
    assert caught.value.code == 401


async def test_the_tail_streams_a_conversation_as_it_happens(port: int, connect: Connect) -> None:
    tail = await watch(port)
    client = await connect("watched", user_id="anna")
    await client.greeting()
    await client.chat("watched", "Where is my order 10042?")
    await client.chat("watched", "I want to talk to a human")
    # The reply reaches the tab before its reply_done and handoff_requested events are
    # published: wait for the last of them, or the next frame's error event may overtake.
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != "handoff_requested":
        seen.append(await next_event(tail))
    await client.expect("handoff_pending")  # on the waiting list for a person now
    await client.send(type="dance")
    await client.error()
    client.close()

    while seen[-1]["type"] != "connection_closed":
        seen.append(await next_event(tail))
    kinds = [e["type"] for e in seen]
    assert kinds[0] == "connection_opened"
    assert kinds[1] == "user_message"
    first_done = kinds.index("reply_done")
    assert set(kinds[2:first_done]) == {"reply_chunk"}
    assert kinds[-4:] == ["reply_done", "handoff_requested", "error", "connection_closed"]
    assert all(e["session_id"] == "watched" for e in seen)
    assert seen[1]["content"] == "Where is my order 10042?"
    done = seen[first_done]
    assert done["agent"] == "order"
    deltas = [e["delta"] for e in seen[:first_done] if e["type"] == "reply_chunk"]
    assert "".join(deltas) == done["content"]
    handoff = seen[-3]
    assert (handoff["reason"], handoff["user_id"]) == ("customer_asked", "anna")
    assert handoff["message_id"] == seen[-4]["message_id"]
    assert seen[-2]["error_type"] == "unknown_type"
    # Every event a conversation without a person in it has (tests/test_handoff.py: the
    # rest), but tool calls, which only the llm agent makes (tests/test_llm_agent.py).
    assert set(kinds) == set(EVENT_TYPES) - {
        "operator_joined", "operator_left", "operator_message", "note", "typing", "read",
        "reaction", "tool_call",
    }  # fmt: skip
    tail.close()


async def test_the_tail_takes_the_token_in_the_query_as_browsers_must_send_it(
    port: int, connect: Connect
) -> None:
    tail = await open_tail(port, "?token=" + ADMIN_TOKEN)
    client = await connect("by-query")
    await client.greeting()
    frame = await asyncio.wait_for(tail.read_message(), TIMEOUT)
    assert frame is not None
    assert json.loads(frame)["type"] == "connection_opened"
    tail.close()


async def test_a_tail_of_one_session_sees_only_that_session(port: int, connect: Connect) -> None:
    tail = await watch(port, "mine")
    other = await connect("theirs")
    await other.greeting()
    await other.chat("theirs", "hello")
    mine = await connect("mine")
    await mine.greeting()
    event = await next_event(tail)
    assert (event["type"], event["session_id"]) == ("connection_opened", "mine")
    tail.close()


async def test_events_are_wanted_only_while_someone_watches(
    port: int, connect: Connect, server: Server
) -> None:
    assert not server.engine.bus.events_wanted()
    tail = await watch(port)
    client = await connect("watch-toggle")
    await client.greeting()
    await next_event(tail)  # the tail is live
    assert server.engine.bus.events_wanted()
    tail.close()
    for _ in range(50):  # the server notices the close within a few loop turns
        await client.send(type="ping")
        await client.expect("pong")
        if not server.engine.bus.events_wanted():
            break
    assert not server.engine.bus.events_wanted()
