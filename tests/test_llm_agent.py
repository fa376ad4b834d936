"""The llm agent against a real local server that speaks the chat completions protocol.

Each test runs a real ChatBuddy server (``--agent llm``) whose model is the
fake in tests/fake_model.py, on a free port, and talks to it over a real chat
WebSocket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chatbuddy.agents.llm import LlmAgent
from chatbuddy.client.admin import AdminClient, EventStream
from chatbuddy.client.target import Target
from chatbuddy.server import Server
from chatbuddy.settings import Settings
from tests.builders import build_engine, unlimited
from tests.conftest import ADMIN_TOKEN, Connect, Http
from tests.fake_model import (
    Answer,
    Cut,
    Failure,
    FakeModel,
    Garbage,
    Hold,
    Stream,
    Text,
    ToolCall,
    call,
    say,
)
from tests.helpers import TIMEOUT, ChatClient, eventually
from tests.test_metrics import scrape

API_KEY = "sk-test-0123456789abcdef-secret"
#: --llm-timeout of these tests: short, so failures are quick, but well above a fake's answer.
DEADLINE = 2.0 * TIMEOUT / 5.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeModel]:
    model = FakeModel()
    await model.start()
    yield model
    await model.stop()


def llm_settings(fake: FakeModel, **options: Any) -> Settings:
    return unlimited(
        port=0,
        admin_token=ADMIN_TOKEN,
        agent="llm",
        llm_model="fake-model",
        llm_base_url=fake.url,
        llm_api_key=API_KEY,
        llm_timeout=DEADLINE,
        **options,
    )


@pytest.fixture
def settings(fake: FakeModel) -> Settings:
    return llm_settings(fake)


async def opened(connect: Connect, session_id: str = "s1") -> ChatClient:
    client = await connect(session_id)
    await client.greeting()
    return client


async def two_tabs(connect: Connect, session_id: str = "s1") -> tuple[ChatClient, ChatClient]:
    first = await connect(session_id)
    token = (await first.greeting())["session_token"]
    second = await connect(session_id, session_token=token)
    await second.greeting()
    return first, second


async def chat(client: ChatClient, content: str, session_id: str = "s1", **extra: Any) -> None:
    await client.send(type="chat_message", session_id=session_id, content=content, **extra)


async def frames_until(client: ChatClient, *kinds: str) -> list[dict[str, Any]]:
    """Frames received up to and including the first of ``kinds``."""
    seen = []
    while True:
        frame = await client.receive()
        seen.append(frame)
        if frame["type"] in kinds:
            return seen


# -- streaming ----------------------------------------------------------------------------


async def test_the_first_chunk_reaches_the_client_before_the_model_sends_its_last(
    fake: FakeModel, server: Server, connect: Connect
) -> None:
    release = asyncio.Event()
    fake.answer(Stream((Text("Hello"), Text(" there,"), Hold(release), Text(" Anna!"))))
    client = await opened(connect)
    await chat(client, "Hi!")
    first = (await client.expect("chat_response_chunk"))["data"]
    assert first["delta"] == "Hello"
    assert fake.requests[0].sent < 3, "the model has not sent its last delta yet"
    release.set()
    chunks, reply = await client.reply()
    assert "".join([first["delta"], *(c["delta"] for c in chunks)]) == "Hello there, Anna!"
    assert reply["content"] == "Hello there, Anna!"
    assert reply["agent_type"] == "llm"
    assert reply["metadata"]["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "total_tokens": 120,
        "session_total": 120,
    }


async def test_each_request_to_the_model_is_counted_in_the_metrics(
    fake: FakeModel, server: Server, connect: Connect, http: Http
) -> None:
    fake.answer(Stream((Text("Hello"), Text(" there"))))
    client = await opened(connect)
    await chat(client, "Hi!")
    await client.reply()
    metrics = await scrape(http)
    assert metrics.value("chatbuddy_llm_requests_total", model="fake-model", outcome="ok") == 1
    assert metrics.value("chatbuddy_llm_request_seconds_count", model="fake-model") == 1
    assert metrics.value("chatbuddy_llm_first_token_seconds_count", model="fake-model") == 1
    tokens = "chatbuddy_llm_tokens_total"
    assert metrics.value(tokens, model="fake-model", kind="prompt") == 100  # the fake's usage
    assert metrics.value(tokens, model="fake-model", kind="completion") == 20


async def test_the_model_gets_the_system_prompt_and_the_conversation_so_far(
    fake: FakeModel, server: Server, connect: Connect
) -> None:
    fake.answer(say("The S24 costs 349 990 Ft."), say("You're welcome!"))
    client = await opened(connect)
    await client.chat("s1", "How much is the Galaxy S24?")
    await client.chat("s1", "Thanks!")
    messages = fake.requests[1].body["messages"]
    assert messages[0]["role"] == "system"
    assert "TechShop" in messages[0]["content"] or "shop" in messages[0]["content"]
    assert messages[1:] == [
        {"role": "user", "content": "How much is the Galaxy S24?"},
        {"role": "assistant", "content": "The S24 costs 349 990 Ft."},
        {"role": "user", "content": "Thanks!"},
    ]
    body = fake.requests[1].body
    assert body["model"] == "fake-model"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == server.settings.llm_max_tokens
    assert {t["function"]["name"] for t in body["tools"]} >= {"search_products", "order_status"}


async def test_the_key_goes_as_a_bearer_header_and_into_no_log_line(
    fake: FakeModel, server: Server, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    fake.answer(Failure(401, "bad key"), say("Hello!"))
    with caplog.at_level(logging.DEBUG):
        client = await opened(connect)
        await chat(client, "Hello")
        error = await client.error()
        assert (await client.chat("s1", "Again"))["content"] == "Hello!"
    assert [r.headers["Authorization"] for r in fake.requests] == [f"Bearer {API_KEY}"] * 2
    assert (error["error_type"], error["retryable"]) == ("agent_error", False)
    assert caplog.records, "something was logged at debug level"
    assert API_KEY not in caplog.text
    assert API_KEY[-12:] not in caplog.text
    assert API_KEY not in repr(server.settings)


# -- tools --------------------------------------------------------------------------------


async def test_a_tool_call_split_across_chunks_is_run_and_its_result_reaches_the_model(
    fake: FakeModel, server: Server, connect: Connect
) -> None:
    fake.answer(
        Stream((ToolCall("search_products", {"text": "Galaxy S24"}, pieces=5),)),
        say("The Samsung Galaxy S24 is 349 990 Ft and in stock."),
    )
    client = await opened(connect)
    await chat(client, "Mennyi a Galaxy S24?")
    frames = await frames_until(client, "chat_response")
    status = [f["data"] for f in frames if f["type"] == "reply_status"]
    reply = frames[-1]["data"]
    assert status == [
        {
            "message_id": reply["message_id"],
            "in_reply_to": reply["in_reply_to"],
            "activity": "tool",
            "tool": "search_products",
        }
    ]
    second = fake.requests[1].body["messages"]
    asked, answered = second[-2], second[-1]
    assert asked["tool_calls"][0]["function"] == {
        "name": "search_products",
        "arguments": json.dumps({"text": "Galaxy S24"}),
    }
    assert answered["role"] == "tool"
    assert answered["tool_call_id"] == "call_1"
    result = json.loads(answered["content"])
    assert [p["name"] for p in result["products"]] == ["Samsung Galaxy S24"]
    assert result["products"][0]["price"] == 349990
    assert reply["content"] == "The Samsung Galaxy S24 is 349 990 Ft and in stock."
    [tool] = reply["metadata"]["tools"]
    assert (tool["tool"], tool["ok"]) == ("search_products", True)
    assert reply["metadata"]["usage"]["total_tokens"] == 240  # two requests


async def test_an_order_is_shown_only_with_its_proof_and_wrong_proofs_lock_the_session(
    fake: FakeModel, server: Server, connect: Connect
) -> None:
    wrong = {"order_number": "10042", "email": "someone@else.example"}
    right = {"order_number": "10042", "email": "nagy.peter@example.com"}  # the owner's
    for arguments in (wrong, wrong, wrong, right):
        fake.answer(call("order_status", arguments), say("Checked."))
    client = await opened(connect)
    for _ in range(4):
        await client.chat("s1", "Hol tart a 10042-es rendelésem?")
    results = [
        json.loads(r.body["messages"][-1]["content"])
        for r in fake.requests
        if r.body["messages"][-1]["role"] == "tool"
    ]
    assert [r["status"] for r in results] == ["proof_wrong", "proof_wrong", "locked", "locked"]
    assert all("shipped" not in json.dumps(r) for r in results)


async def test_a_tool_the_shop_does_not_have_ends_the_reply_with_agent_error(
    fake: FakeModel, server: Server, connect: Connect
) -> None:
    fake.answer(call("delete_all_orders", {}))
    client = await opened(connect)
    await chat(client, "Do something odd")
    error = await client.error()
    assert (error["error_type"], error["retryable"]) == ("agent_error", True)
    assert len(fake.requests) == 1, "the refused call's result never went back"


async def test_tool_calls_appear_in_the_tail_with_arguments_only_when_asked(
    fake: FakeModel, server: Server, connect: Connect
) -> None:
    admin = AdminClient(Target(f"http://127.0.0.1:{server.port}", token=ADMIN_TOKEN))
    plain = await admin.watch()
    detailed = await admin.watch(tool_arguments=True)
    fake.answer(call("order_status", {"order_number": "10042", "postcode": "1111"}), say("Ok."))
    client = await opened(connect)
    await client.chat("s1", "Order 10042, postcode 1111")

    async def tool_event(stream: EventStream) -> dict[str, Any]:
        while True:
            event: dict[str, Any] = await asyncio.wait_for(stream.next(), TIMEOUT)
            if event["type"] == "tool_call":
                return event

    shown, hidden = await tool_event(detailed), await tool_event(plain)
    assert shown["arguments"] == {"order_number": "10042", "postcode": "1111"}
    assert "arguments" not in hidden
    assert (hidden["tool"], hidden["message_id"]) == ("order_status", 2)
    plain.close()
    detailed.close()


# -- cancelling ---------------------------------------------------------------------------


async def test_cancel_closes_the_request_to_the_model_and_keeps_what_was_written(
    fake: FakeModel, server: Server, connect: Connect
) -> None:
    never = asyncio.Event()
    fake.answer(Stream((Text("Let me think"), Hold(never), Text(" more."))))
    client = await opened(connect)
    await chat(client, "Tell me everything")
    chunk = (await client.expect("chat_response_chunk"))["data"]
    await client.send(type="cancel", message_id=chunk["message_id"])
    _, reply = await client.reply()
    assert (reply["content"], reply["cancelled"]) == ("Let me think", True)
    await asyncio.wait_for(fake.requests[0].over.wait(), TIMEOUT)
    assert fake.requests[0].closed_early
    await client.send(type="history")
    stored = (await client.expect("history"))["data"]["messages"][-1]
    assert (stored["content"], stored["cancelled"]) == ("Let me think", True)
    fake.answer(say("Still here."))
    assert (await client.chat("s1", "Hello?"))["content"] == "Still here."


async def test_another_tab_can_cancel_before_any_text_by_the_messages_client_id(
    fake: FakeModel, server: Server, connect: Connect
) -> None:
    never = asyncio.Event()
    fake.answer(Stream((Hold(never), Text("too late"))))
    writer, other = await two_tabs(connect)
    await chat(writer, "Slow one", client_message_id="m-1")
    await eventually(lambda: len(fake.requests) == 1, "the request to the model")
    await other.send(type="cancel", client_message_id="m-1")
    _, reply = await writer.reply()
    assert (reply["content"], reply["cancelled"]) == ("", True)
    await asyncio.wait_for(fake.requests[0].over.wait(), TIMEOUT)
    assert fake.requests[0].closed_early


async def test_a_queued_message_can_be_cancelled_and_the_model_is_never_asked(
    fake: FakeModel, server: Server, connect: Connect
) -> None:
    release = asyncio.Event()
    fake.answer(Stream((Text("First"), Hold(release), Text(" answer."))))
    client = await opened(connect)
    await chat(client, "One", client_message_id="m-1")
    await chat(client, "Two", client_message_id="m-2")
    await client.expect("chat_response_chunk")
    await client.send(type="cancel", client_message_id="m-2")
    await eventually(lambda: server.service._replies._queues["s1"][0].cancelled, "marked")
    release.set()
    _, first = await client.reply()
    _, second = await client.reply()
    assert first["content"] == "First answer."
    assert (second["content"], second["cancelled"]) == ("", True)
    assert len(fake.requests) == 1


# -- failures -----------------------------------------------------------------------------

FAILURES: dict[str, Callable[[], Answer]] = {
    "429": lambda: Failure(429, "rate limited"),
    "500": lambda: Failure(500, "server error"),
    "stream cut mid-way": lambda: Stream((Text("Half a"), Cut())),
    "malformed stream": lambda: Stream((Text("Half a"), Garbage(), Text(" answer"))),
    # A first token that does not come (an event nobody sets).
    "slow first token": lambda: Stream((Hold(asyncio.Event()), Text("late"))),
}


@pytest.mark.parametrize("kind", list(FAILURES))
async def test_every_failure_ends_in_a_retryable_agent_error_within_the_timeout(
    fake: FakeModel, server: Server, connect: Connect, kind: str
) -> None:
    fake.default = FAILURES[kind]()
    client = await opened(connect)
    started = time.monotonic()
    await chat(client, "Hello")
    frames = await frames_until(client, "error", "chat_response")
    elapsed = time.monotonic() - started
    error = frames[-1]["data"]
    assert (error["error_type"], error["retryable"], error["in_reply_to"]) == (
        "agent_error",
        True,
        1,
    )
    assert elapsed < DEADLINE + 0.5
    if kind in ("429", "500"):
        assert len(fake.requests) == 1 + server.settings.llm_retries  # the SDK's, bounded
    if kind == "slow first token":
        assert elapsed >= DEADLINE * 0.9
        await asyncio.wait_for(fake.requests[0].over.wait(), TIMEOUT)
        assert fake.requests[0].closed_early
    fake.default = say("Back again.")
    assert (await client.chat("s1", "Hello again"))["content"] == "Back again."


class TestBusy:
    @pytest.fixture
    def settings(self, fake: FakeModel) -> Settings:
        return llm_settings(fake, llm_max_concurrency=1, llm_max_waiting=1)

    async def test_past_the_queue_a_message_gets_busy_and_the_rest_are_answered_in_turn(
        self, fake: FakeModel, server: Server, connect: Connect
    ) -> None:
        release = asyncio.Event()
        fake.answer(Stream((Text("One"), Hold(release))), say("Two"))
        first, second, third = [await opened(connect, f"s{n}") for n in range(1, 4)]
        await chat(first, "Hi", "s1")
        await first.expect("chat_response_chunk")
        await chat(second, "Hi", "s2")
        agent = server.agent
        assert isinstance(agent, LlmAgent)
        await eventually(lambda: agent.waiting == 1, "the second message waiting for a turn")
        await chat(third, "Hi", "s3")
        busy = await third.error()
        assert (busy["error_type"], busy["retryable"]) == ("busy", True)
        release.set()
        _, one = await first.reply()
        _, two = await second.reply()
        assert (one["content"], two["content"]) == ("One", "Two")


# -- cost ---------------------------------------------------------------------------------


class TestSessionCap:
    @pytest.fixture
    def settings(self, fake: FakeModel) -> Settings:
        return llm_settings(fake, llm_session_tokens=100)

    async def test_a_conversation_past_its_tokens_is_refused_without_asking_the_model(
        self, fake: FakeModel, server: Server, connect: Connect
    ) -> None:
        client = await opened(connect)
        first = await client.chat("s1", "Hello")
        assert first["metadata"]["usage"]["session_total"] == 120
        await chat(client, "More")
        error = await client.error()
        assert (error["error_type"], error["retryable"]) == ("agent_error", False)
        assert len(fake.requests) == 1
        other = await opened(connect, "s2")
        assert (await other.chat("s2", "Hello"))["content"] == "Default answer."


class TestDailyCapWithFallback:
    @pytest.fixture
    def settings(self, fake: FakeModel) -> Settings:
        return llm_settings(fake, llm_daily_tokens=100, llm_fallback="coordinator")

    async def test_past_the_days_tokens_the_offline_assistant_answers_marked_as_such(
        self, fake: FakeModel, server: Server, connect: Connect
    ) -> None:
        client = await opened(connect)
        await client.chat("s1", "Hello")
        other = await opened(connect, "s2")
        reply = await other.chat("s2", "Mennyi a Samsung Galaxy S24?")
        assert len(fake.requests) == 1
        assert reply["metadata"]["fallback"] == "coordinator"
        assert reply["metadata"]["fallback_reason"] == "daily_cap"
        assert reply["metadata"]["agent"] == "product"
        assert "Samsung Galaxy S24" in reply["content"]


class TestFallbackOnFailure:
    @pytest.fixture
    def settings(self, fake: FakeModel) -> Settings:
        return llm_settings(fake, llm_fallback="coordinator")

    async def test_a_failing_model_is_replaced_by_the_offline_answer(
        self, fake: FakeModel, server: Server, connect: Connect
    ) -> None:
        fake.default = Failure(500)
        client = await opened(connect)
        reply = await client.chat("s1", "What coupons do you have?")
        assert reply["metadata"]["fallback_reason"] == "model_500"
        assert reply["metadata"]["agent"] == "marketing"


async def test_stats_add_up_the_model_tokens_of_every_reply(
    fake: FakeModel, server: Server, connect: Connect, http: Any
) -> None:
    client = await opened(connect)
    await client.chat("s1", "One")
    await client.chat("s1", "Two")
    response = await http.fetch(
        "/api/v1/websocket/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    counters = json.loads(response.body)["counters"]
    assert (counters["prompt_tokens"], counters["completion_tokens"]) == (200, 40)


async def test_a_tab_on_another_node_stops_a_reply_this_node_writes(
    fake: FakeModel, redis_url: str
) -> None:
    """Two nodes on one Redis: the reply is written on node A (where the message was
    sent); the cancel comes from a tab of the same session on node B."""
    settings = llm_settings(fake)
    never = asyncio.Event()
    fake.answer(Stream((Text("Writing on A"), Hold(never))))
    engines = [build_engine("redis", redis_url=redis_url) for _ in range(2)]
    async with Server(settings, engine=engines[0]) as a, Server(settings, engine=engines[1]) as b:
        await eventually(lambda: a.engine.ready() and b.engine.ready(), "both nodes ready")
        on_a = await ChatClient.open(a.port, "s1")
        token = (await on_a.greeting())["session_token"]
        on_b = await ChatClient.open(b.port, "s1", session_token=token)
        await on_b.greeting()
        await chat(on_a, "Tell me a long story")
        await on_b.expect("user_message")
        reply_id = (await on_b.expect("chat_response_chunk"))["data"]["message_id"]
        await on_b.send(type="cancel", message_id=reply_id)
        _, reply = await on_a.reply()
        assert (reply["content"], reply["cancelled"]) == ("Writing on A", True)
        await asyncio.wait_for(fake.requests[0].over.wait(), TIMEOUT)
        assert fake.requests[0].closed_early
        on_a.close()
        on_b.close()
