"""Replies under stress: disconnects mid-reply, failing agents, floods, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from chatbuddy.agents import Agent, AgentReply, AgentRequest
from chatbuddy.engine import Engine
from chatbuddy.records import utcnow
from chatbuddy.settings import Settings
from tests.builders import build_engine
from tests.conftest import Connect
from tests.helpers import TIMEOUT


class GatedAgent:
    """Streams "part one " at once and "part two" only when the test opens the gate."""

    name = "gated"
    history_wanted = 0

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def respond(self, request: AgentRequest) -> AgentReply:
        return AgentReply(agent="gated", confidence=0.5, chunks=self._chunks())

    async def _chunks(self) -> AsyncIterator[str]:
        yield "part one "
        self.started.set()
        await self.gate.wait()
        yield "part two"


class GatedAtOnceAgent(GatedAgent):
    """Says it answers at once, so its replies run in the connection that asked, with no
    task of their own; yet it waits between its pieces, as a slow publish would: a stop
    lands between two of them."""

    answers_at_once = True


class FailingAgent:
    """Fails on "boom" before replying, on "late" after a first chunk; echoes the rest."""

    name = "failing"
    history_wanted = 0

    async def respond(self, request: AgentRequest) -> AgentReply:
        if request.content == "boom":
            raise RuntimeError("agent exploded: boom")
        return AgentReply(agent="failing", confidence=2.0, chunks=self._chunks(request.content))

    async def _chunks(self, content: str) -> AsyncIterator[str]:
        yield content
        if content == "late":
            raise RuntimeError("stream broke")


class TestADisconnectMidReply:
    @pytest.fixture
    def agent(self) -> Agent:
        return GatedAgent()

    async def test_loses_nothing_the_reply_is_stored_for_history(
        self, connect: Connect, agent: GatedAgent
    ) -> None:
        client = await connect("leaver")
        token = (await client.greeting())["session_token"]
        await client.send(type="chat_message", session_id="leaver", content="question")
        first = await client.expect("chat_response_chunk")
        assert first["data"]["delta"] == "part one "
        client.close()
        await asyncio.wait_for(agent.started.wait(), TIMEOUT)
        agent.gate.set()

        back = await connect("leaver", session_token=token)
        greeting = await back.greeting()
        if greeting["last_message_id"] != first["data"]["message_id"]:
            # The reply may still be finishing; it arrives on this new connection.
            await back.expect("chat_response_chunk")
            await back.expect("chat_response")
        await back.send(type="history")
        messages = (await back.expect("history"))["data"]["messages"]
        assert [(m["role"], m["content"]) for m in messages] == [
            ("user", "question"),
            ("assistant", "part one part two"),
        ]

    async def test_other_connections_of_the_session_still_get_the_reply(
        self, connect: Connect, agent: GatedAgent
    ) -> None:
        asker = await connect("stayer")
        token = (await asker.greeting())["session_token"]
        watcher = await connect("stayer", session_token=token)
        await watcher.greeting()
        await asker.send(type="chat_message", session_id="stayer", content="question")
        await watcher.expect("user_message")
        await watcher.expect("chat_response_chunk")
        asker.close()
        agent.gate.set()
        await watcher.expect("chat_response_chunk")
        response = (await watcher.expect("chat_response"))["data"]
        assert response["content"] == "part one part two"

    async def test_a_ping_is_answered_while_a_reply_is_being_produced(
        self, connect: Connect, agent: GatedAgent
    ) -> None:
        client = await connect("busy")
        await client.greeting()
        await client.send(type="chat_message", session_id="busy", content="question")
        await client.expect("chat_response_chunk")
        await client.send(type="ping")
        await client.expect("pong")
        agent.gate.set()
        await client.expect("chat_response_chunk")
        await client.expect("chat_response")


class TestAStopForAReplyWithoutATaskOfItsOwn:
    @pytest.fixture
    def agent(self) -> Agent:
        return GatedAtOnceAgent()

    async def test_ends_it_before_the_next_piece_and_stores_what_was_written(
        self, connect: Connect, agent: GatedAtOnceAgent
    ) -> None:
        writer = await connect("inline")
        token = (await writer.greeting())["session_token"]
        other = await connect("inline", session_token=token)
        await other.greeting()
        await writer.send(type="chat_message", session_id="inline", content="question")
        first = (await writer.expect("chat_response_chunk"))["data"]
        await other.send(type="cancel", message_id=first["message_id"])
        await other.send(type="ping")  # frames are handled in order: the cancel was
        while (await other.receive())["type"] != "pong":
            pass  # the message and the first piece, as every tab of the session gets them
        agent.gate.set()
        reply = (await writer.expect("chat_response"))["data"]
        assert (reply["content"], reply["cancelled"]) == ("part one ", True)
        await writer.send(type="history")
        stored = (await writer.expect("history"))["data"]["messages"][-1]
        assert (stored["content"], stored["cancelled"]) == ("part one ", True)


class TestAFailingAgent:
    @pytest.fixture
    def agent(self) -> Agent:
        return FailingAgent()

    async def test_produces_an_agent_error_and_the_connection_stays_open(
        self, connect: Connect
    ) -> None:
        client = await connect("fails")
        await client.greeting()
        await client.send(type="chat_message", session_id="fails", content="boom")
        error = await client.error()
        assert error["error_type"] == "agent_error"
        assert error["request_type"] == "chat_message"
        assert "boom" not in error["error_message"]  # no internals reach the client
        reply = await client.chat("fails", "still here?")
        assert reply["content"] == "still here?"

    async def test_that_breaks_mid_stream_stores_no_half_reply(self, connect: Connect) -> None:
        client = await connect("half")
        await client.greeting()
        await client.send(type="chat_message", session_id="half", content="late")
        await client.expect("chat_response_chunk")
        error = await client.error()
        assert error["error_type"] == "agent_error"
        await client.send(type="history")
        messages = (await client.expect("history"))["data"]["messages"]
        assert [m["role"] for m in messages] == ["user"]
        assert error["in_reply_to"] == messages[0]["id"]

    async def test_has_its_confidence_clamped_to_one(self, connect: Connect) -> None:
        client = await connect("clamp")
        await client.greeting()
        assert (await client.chat("clamp", "hi"))["confidence"] == 1.0


class TestRateLimits:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, agent="echo", rate_limit=0.001, rate_burst=3, store="memory")

    async def test_a_connection_over_its_burst_is_told_to_slow_down(self, connect: Connect) -> None:
        client = await connect("flood")
        await client.greeting()
        for n in range(4):
            await client.send(type="chat_message", session_id="flood", content=f"m{n}")
        errors: list[dict[str, str]] = []
        replies: list[str] = []
        while len(errors) + len(replies) < 4:
            frame = await client.receive()
            if frame["type"] == "error":
                errors.append(frame["data"])
            elif frame["type"] == "chat_response":
                replies.append(frame["data"]["content"])
        assert replies == ["m0", "m1", "m2"]
        assert [e["error_type"] for e in errors] == ["rate_limited"]
        assert "per second" in errors[0]["error_message"]
        await client.send(type="ping")  # the connection still works
        await client.expect("pong")


class TestSessionExpiry:
    @pytest.fixture
    def clock(self) -> list[datetime]:
        return [utcnow()]

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, agent="echo", session_ttl=60, store="memory")

    @pytest.fixture
    def engine(self, clock: list[datetime]) -> Engine:
        return build_engine("memory", session_ttl=60, history_limit=200, clock=lambda: clock[0])

    async def test_an_expired_session_answers_missing_session_and_closes_with_4001(
        self, connect: Connect, clock: list[datetime]
    ) -> None:
        client = await connect("short-lived")
        await client.greeting()
        await client.chat("short-lived", "hello")
        clock[0] += timedelta(seconds=61)
        await client.send(type="chat_message", session_id="short-lived", content="hello?")
        error = await client.error()
        assert error["error_type"] == "missing_session"
        assert await client.closed() == 4001  # terminal: the page starts a new session

    async def test_activity_slides_the_expiry(
        self, connect: Connect, clock: list[datetime]
    ) -> None:
        client = await connect("kept-alive")
        await client.greeting()
        for _ in range(3):
            clock[0] += timedelta(seconds=45)
            await client.chat("kept-alive", "still here")
        await client.send(type="session_info")
        assert (await client.expect("session_info"))["data"]["message_count"] == 6


class RememberingAgent:
    """Replies "ok" and keeps every request, with the history it came with."""

    name = "remembering"
    history_wanted = 3

    def __init__(self) -> None:
        self.requests: list[AgentRequest] = []

    async def respond(self, request: AgentRequest) -> AgentReply:
        self.requests.append(request)
        return AgentReply(agent="remembering", confidence=1.0, text=f"ok {request.content}")


class TestTheAgentSeesTheConversation:
    @pytest.fixture(params=["memory", "redis"])
    def engine_kind(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def agent(self) -> Agent:
        return RememberingAgent()

    async def test_each_request_carries_the_messages_before_it(
        self, connect: Connect, agent: RememberingAgent
    ) -> None:
        client = await connect("remembers")
        await client.greeting()
        for text in ("one", "two", "three"):
            await client.chat("remembers", text)
        first, _, third = agent.requests
        assert list(first.history) == []
        assert [(m.role, m.content) for m in third.history] == [
            ("assistant", "ok one"),
            ("user", "two"),
            ("assistant", "ok two"),
        ]
