"""What one hostile client can do to the server, measured: each is bounded.

Scaled-down counts that still show the bound; loops bounded in count and time;
only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from chatbuddy.audit import AuditLog
from chatbuddy.cli.loadgen import (  # type: ignore[import-not-found,unused-ignore]
    client_frame,
)
from chatbuddy.engine import Engine
from chatbuddy.errors import ClientFailure, Disconnected
from chatbuddy.records import utcnow
from chatbuddy.server import Server
from chatbuddy.settings import Settings
from chatbuddy.web.limits import PAUSE, ConnectionLimits, GuardedHTTPServer
from tests.builders import build_engine, unlimited
from tests.conftest import ADMIN_TOKEN, Connect, Http
from tests.helpers import TIMEOUT, ChatClient, deaf_client, eventually, refused
from tests.redis_server import RedisServer


async def raw(port: int, data: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if data:
        writer.write(data)
        await writer.drain()
    return reader, writer


async def answer_head(reader: asyncio.StreamReader) -> bytes:
    """The status line and headers of the server's answer."""
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)


async def answer(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes (bounded by TIMEOUT)."""
    return await asyncio.wait_for(reader.read(), TIMEOUT)


class TestConnectionCaps:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(
            port=0, admin_token=ADMIN_TOKEN, max_connections_per_ip=20, http_timeout=0.5
        )

    async def test_one_address_cannot_hold_more_connections_than_its_cap(
        self, server: Server, port: int
    ) -> None:
        held = [await raw(port) for _ in range(20)]  # idle, like slowloris sockets
        assert server.limits is not None
        await eventually(lambda: server.limits is not None and server.limits.open == 20)
        extra = [await raw(port) for _ in range(5)]
        refusals = await asyncio.gather(*(answer(reader) for reader, _ in extra))
        assert all(r.startswith(b"HTTP/1.1 503") for r in refusals)
        assert all(b'"too_many_connections"' in r for r in refusals)
        assert server.limits.open == 20
        for _, writer in held + extra:
            writer.close()

    async def test_a_request_that_never_finishes_its_headers_is_dropped(self, port: int) -> None:
        reader, writer = await raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no end
        assert await answer(reader) == b""  # closed by the server, within the timeout
        writer.close()

    async def test_a_body_larger_than_any_endpoint_takes_is_not_read(self, port: int) -> None:
        reader, writer = await raw(
            port,
            b"POST /api/v1/websocket/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 100000000\r\n\r\n",
        )
        reply = await answer(reader)  # the connection closes without the 100 MB being read
        assert b"200 OK" not in reply
        writer.close()


class TestTheTotalCap:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, admin_token=ADMIN_TOKEN, max_connections=10)

    async def test_past_the_total_cap_connections_are_refused_and_a_freed_slot_serves(
        self, server: Server, port: int
    ) -> None:
        held = [await raw(port) for _ in range(10)]
        await eventually(lambda: server.limits is not None and server.limits.open == 10)
        reader, _ = await raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b'"server_full"' in await answer(reader)
        held.pop()[1].close()
        await eventually(lambda: server.limits is not None and server.limits.open == 9)
        reader, writer = await raw(
            port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert b"200 OK" in await answer(reader)
        for _, held_writer in held:
            held_writer.close()
        writer.close()


class _Exhausted:
    """A listening socket whose next ``failures`` accepts fail as at the open-file limit."""

    def __init__(self, sock: socket.socket, failures: int) -> None:
        self._sock = sock
        self.failures = failures
        self.attempts = 0

    def fileno(self) -> int:
        return self._sock.fileno()

    def accept(self) -> tuple[socket.socket, Any]:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return self._sock.accept()

    def close(self) -> None:
        self._sock.close()


async def test_out_of_descriptors_the_accept_loop_pauses_instead_of_spinning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    exhausted = _Exhausted(listener, failures=1000)
    accepted: list[Any] = []
    http = GuardedHTTPServer(lambda request: None)
    http.guard(ConnectionLimits(total=10, per_ip=0, audit=AuditLog.disabled()), per_peer=True)
    http._handle_connection = lambda connection, address: accepted.append(connection)  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.WARNING):
        remove: Callable[[], None] = http._accept(exhausted)  # type: ignore[arg-type]
        client = socket.create_connection(listener.getsockname())
        started = loop.time()
        await eventually(lambda: exhausted.attempts >= 6, "a few tries")
        took = loop.time() - started
        remove()
    client.close()
    http.close_reserve()
    listener.close()
    # A spinning loop makes six tries in microseconds; this one pauses between them.
    assert took >= 2 * PAUSE
    assert accepted == []
    assert sum("out of file descriptors" in r.message for r in caplog.records) == 1
    assert not any(r.exc_info for r in caplog.records)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


class TestASlowConsumer:
    @pytest.fixture
    def settings(self) -> Settings:
        return unlimited(port=0, admin_token=ADMIN_TOKEN, agent="echo")

    async def test_a_client_that_asks_but_never_reads_is_closed_before_it_costs_memory(
        self, server: Server, port: int, connect: Connect
    ) -> None:
        # A session full of long messages, as the attacker prepares it.
        filler = await connect("hoarder")
        token = (await filler.greeting())["session_token"]
        for n in range(40):
            await filler.chat("hoarder", f"{n:03d}" + "x" * 3990)
        filler.close()
        _, writer = await deaf_client(port, f"/ws/chat/hoarder?session_token={token}")
        await eventually(lambda: server.node.connections_in("hoarder") == 1, "the deaf tab")
        before = rss_kib()
        history = client_frame(b'{"type":"history","after":0}')
        for _ in range(200):  # each asks for ~330 KB of history it will never read
            writer.write(history)
        await writer.drain()
        await eventually(lambda: server.node.connections_in("hoarder") == 0, "the deaf tab closed")
        assert rss_kib() - before < 16 * 1024  # without the cap: ~60 MB queued for it
        writer.close()


@pytest.mark.parametrize(
    "path",
    [
        "/static/x%00?session_token=secret-1",
        "/nope?token=secret-2",
        "/ws/chat/bad%20id?session_token=secret-3",
        "/api/v1/sessions?limit=x&token=secret-4",
    ],
)
async def test_no_log_line_carries_a_query_string(
    http: Http, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = await http.fetch(path)
    assert response.code in (400, 401, 403, 404, 426)
    assert response.headers["Content-Type"].startswith("application/json")
    assert "secret" not in caplog.text
    assert "Traceback" not in caplog.text


async def answers(client: ChatClient, count: int) -> tuple[int, int]:
    """Of the next ``count`` answers to chat messages: (replies, rate_limited errors)."""
    replies = refused = 0
    while replies + refused < count:
        frame = await client.receive()
        if frame["type"] == "chat_response":
            replies += 1
        elif frame["type"] == "error" and frame["data"]["error_type"] == "rate_limited":
            refused += 1
    return replies, refused


class TestBudgetsThatOutliveAConnection:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, agent="echo", max_violations=0)  # limits as they ship

    async def test_reconnecting_does_not_buy_a_fresh_budget(self, connect: Connect) -> None:
        first = await connect("greedy")
        token = (await first.greeting())["session_token"]
        loop = asyncio.get_running_loop()
        started = loop.time()
        accepted = 0
        for round_ in range(3):  # a connection's own budget is 20 at once
            client = first if round_ == 0 else await connect("greedy", session_token=token)
            if round_:
                await client.greeting()
            for n in range(25):
                await client.send(type="chat_message", session_id="greedy", content=f"m{n}")
            replies, _ = await answers(client, 25)
            accepted += replies
            client.close()
        elapsed = loop.time() - started
        # The session's budget: a burst of 30, then 10 a second.
        assert accepted <= 30 + 10 * elapsed + 1

    async def test_tabs_of_one_session_share_its_budget(
        self, connect: Connect, server: Server
    ) -> None:
        owner = await connect("crowded")
        token = (await owner.greeting())["session_token"]
        tabs = [owner]
        for _ in range(4):
            tab = await connect("crowded", session_token=token)
            await tab.greeting()
            tabs.append(tab)
        counters = server.counters
        started = asyncio.get_running_loop().time()
        for tab in tabs:  # 75 messages in all; each tab's own budget would allow them
            for n in range(15):
                await tab.send(type="chat_message", session_id="crowded", content=f"t{n}")
        await eventually(
            lambda: counters.messages_received + counters.errors_sent == 75, "all 75 answered"
        )
        elapsed = asyncio.get_running_loop().time() - started
        assert counters.messages_received <= 30 + 10 * elapsed + 1  # the session's budget


class TestAbusersAreDisconnected:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, agent="echo")

    async def test_a_stream_of_bad_frames_ends_in_a_1008_close(self, connect: Connect) -> None:
        client = await connect("rude")
        await client.greeting()
        for _ in range(100):  # the first 30 are refused, then the door closes
            await client.send_raw("{not json")
        assert await client.closed() == 1008

    async def test_a_websocket_ping_flood_ends_in_a_1008_close(self, connect: Connect) -> None:
        client = await connect("pinger")
        await client.greeting()
        for _ in range(400):  # a budget of 60 at once, 30 refusals, then closed
            client.ws.ping(b"x")
        assert await client.closed() == 1008


class TestSessionIdsCannotBeTakenOver:
    @pytest.fixture
    def clock(self) -> list[datetime]:
        return [utcnow()]

    @pytest.fixture
    def settings(self) -> Settings:
        return unlimited(port=0, agent="echo", session_ttl=60, sweep_interval=1)

    @pytest.fixture
    def engine(self, clock: list[datetime]) -> Engine:
        return build_engine("memory", session_ttl=60, clock=lambda: clock[0])

    async def test_an_open_tab_keeps_its_session_so_a_stranger_cannot_take_the_id(
        self, server: Server, port: int, connect: Connect, clock: list[datetime]
    ) -> None:
        tab = await connect("mine")
        await tab.greeting()
        for _ in range(2):  # twice 40 s of silence: more than the 60 s TTL in all
            clock[0] += timedelta(seconds=40)
            moved_to = clock[0]
            record = await server.engine.store.get_session("mine")
            assert record is not None

            def touched(after: datetime = moved_to) -> bool:
                found = server.engine.store._sessions.get("mine")  # type: ignore[attr-defined]
                return found is not None and found.record.last_activity >= after

            await eventually(touched, "the open tab keeping its session alive")
        stranger = await refused(port, "mine")
        assert (stranger.status, stranger.error_type) == (403, "session_access_denied")


class TestARedisThatLostItsData:
    @pytest.fixture
    def engine_kind(self) -> str:
        return "redis"

    @pytest.fixture
    def settings(self) -> Settings:
        return unlimited(port=0, agent="echo", sweep_interval=1)

    async def test_the_old_tab_and_a_stranger_on_the_same_id_never_hear_each_other(
        self, connect: Connect, redis_server: RedisServer
    ) -> None:
        old = await connect("reused")
        await old.greeting()
        await old.chat("reused", "before the outage")
        with redis_server.client() as client:
            client.flushall()  # Redis restarted without persistence
        stranger = await connect("reused")  # no token: a new session on the same id
        greeting = await stranger.greeting()
        assert greeting["resumed"] is False
        stranger_reply = await stranger.chat("reused", "the stranger speaks")
        assert stranger_reply["content"] == "the stranger speaks"
        heard: list[dict[str, Any]] = []
        with contextlib.suppress(Disconnected):
            while True:  # until the server notices and closes the old tab
                heard.append(await old.receive())
        assert old.ws.close_code in (4001, 4002)
        assert not any("stranger" in json.dumps(frame) for frame in heard)


async def test_a_handshake_that_never_upgrades_leaves_no_session(server: Server, port: int) -> None:
    reader, writer = await raw(
        port,
        b"GET /ws/chat/ghost HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\n\r\n",  # no Sec-WebSocket-Version: Tornado answers 426
    )
    assert (await answer_head(reader)).startswith(b"HTTP/1.1 426")
    writer.close()
    assert await server.engine.store.get_session("ghost") is None


class TestNewSessionsPerAddress:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, agent="echo", new_sessions_per_minute=5)

    async def test_one_address_cannot_open_sessions_without_end(self, port: int) -> None:
        answers: list[tuple[int | None, str | None]] = []
        for n in range(12):
            try:
                client = await ChatClient.open(port, f"flood-{n}")
            except ClientFailure as failure:
                answers.append((failure.status, failure.error_type))
                continue
            await client.greeting()
            client.close()
            answers.append((101, None))
        assert answers == [(101, None)] * 5 + [(429, "too_many_sessions")] * 7


# -- behind a proxy (item 2: per-address caps where every peer is the proxy) -------


async def via_proxy(port: int, session_id: str, client_ip: str) -> WebSocketClientConnection:
    """A chat socket as a reverse proxy forwards it for ``client_ip``."""
    request = HTTPRequest(
        f"ws://127.0.0.1:{port}/ws/chat/{session_id}",
        headers={"X-Forwarded-For": client_ip},
        connect_timeout=TIMEOUT,
    )
    return await websocket_connect(request)


class TestBehindATrustedProxy:
    @pytest.fixture
    def settings(self) -> Settings:
        return unlimited(
            port=0, admin_token=ADMIN_TOKEN, trust_proxy_headers=True, max_connections_per_ip=5
        )

    async def test_customers_behind_the_proxy_are_not_capped_as_one_address(
        self, port: int
    ) -> None:
        sockets = [await via_proxy(port, f"shopper-{n}", f"10.0.0.{n}") for n in range(12)]
        greetings = [json.loads(await s.read_message() or "{}") for s in sockets]
        assert {g["type"] for g in greetings} == {"connection_established"}
        for s in sockets:
            s.close()

    async def test_one_forwarded_address_is_capped_and_a_freed_slot_serves(self, port: int) -> None:
        held = [await via_proxy(port, f"greedy-{n}", "10.9.9.9") for n in range(5)]
        with pytest.raises(HTTPClientError) as refusal:
            await via_proxy(port, "greedy-5", "10.9.9.9")
        assert refusal.value.code == 503
        held.pop().close()

        async def a_slot_frees() -> bool:
            try:
                (await via_proxy(port, "greedy-6", "10.9.9.9")).close()
            except HTTPClientError:
                return False
            return True

        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while not await a_slot_frees():  # the close reaches the server in a moment
            assert asyncio.get_running_loop().time() < deadline, "the freed slot never served"
        for s in held:
            s.close()


async def test_a_proxy_that_is_not_trusted_is_pointed_out_once(
    http: Http, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="chatbuddy.limits"):
        for _ in range(3):
            await http.fetch("/ws/chat/proxied", headers={"X-Forwarded-For": "203.0.113.7"})
    warnings = [r for r in caplog.records if "--trust-proxy-headers" in r.getMessage()]
    assert len(warnings) == 1
