"""GET /metrics against a real server: what happened shows in the Prometheus text format."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient

from chatbuddy.agents import AgentReply, AgentRequest
from chatbuddy.errors import ConfigurationError
from chatbuddy.metrics.prometheus import MAX_LABEL_VALUES, PrometheusMetrics
from chatbuddy.server import Server
from chatbuddy.settings import Settings
from tests.builders import build_engine, unlimited
from tests.conftest import ADMIN_TOKEN, Connect, Http
from tests.helpers import TIMEOUT, ChatClient, eventually, refused
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


class Scrape:
    """One scrape of /metrics: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sample's value (0 when there is no such sample yet)."""
        found = [
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(found) <= 1, f"{name} {labels} matches {len(found)} samples"
        return found[0] if found else 0.0


async def scrape(http: Http) -> Scrape:
    response = await http.fetch("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.code == 200, response.body
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return Scrape(response.body.decode())


async def next_error(client: ChatClient) -> dict[str, object]:
    """The next error frame's data, past the replies that may come first."""
    while (frame := await client.receive())["type"] != "error":
        pass
    data: dict[str, object] = frame["data"]
    return data


async def scrape_until(http: Http, wanted: Callable[[Scrape], bool]) -> Scrape:
    """Scrape until ``wanted`` holds (the server sees a close a moment after the client)."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not wanted(metrics := await scrape(http)):
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting for the metric"
        await asyncio.sleep(0.01)
    return metrics


@pytest.fixture
def settings() -> Settings:
    return Settings(port=0, admin_token=ADMIN_TOKEN, rate_limit=1.0, rate_burst=2)


async def test_metrics_need_the_admin_token(http: Http) -> None:
    missing = await http.fetch("/metrics")
    wrong = await http.fetch("/metrics", headers={"Authorization": "Bearer nope"})
    assert (missing.code, wrong.code) == (401, 401)
    assert b"chatbuddy_" not in missing.body + wrong.body


async def test_a_conversation_shows_in_the_metrics(http: Http, connect: Connect) -> None:
    client = await connect("m-talk")
    await client.greeting()
    await client.chat("m-talk", "Mennyi az ára a Samsung Galaxy S24-nek?")
    metrics = await scrape(http)
    assert metrics.value("chatbuddy_connections", engine="memory") == 1
    assert metrics.value("chatbuddy_messages_received_total", transport="websocket") == 1
    assert metrics.value("chatbuddy_replies_total", agent="coordinator", route="product") == 1
    assert metrics.value("chatbuddy_reply_seconds_count", agent="coordinator") == 1
    assert metrics.value("chatbuddy_reply_first_chunk_seconds_count", agent="coordinator") == 1
    assert 0 < metrics.value("chatbuddy_reply_seconds_sum", agent="coordinator") < 5
    assert metrics.value("chatbuddy_engine_ready", engine="memory") == 1
    assert metrics.value("process_resident_memory_bytes") > 0
    # The memory store and the local bus are not timed: their calls never leave the process.
    assert not [s for s in metrics.samples if s.name.startswith("chatbuddy_engine_seconds")]

    client.close()
    await client.closed()
    after = await scrape_until(http, lambda m: m.value("chatbuddy_connections") == 0)
    assert after.value("chatbuddy_disconnects_total", code="none", by="client") == 1


async def test_refusals_errors_and_rate_limits_are_counted_by_kind(
    http: Http, connect: Connect, port: int
) -> None:
    owner = await connect("m-private")
    await owner.greeting()
    assert (await refused(port, "m-private")).status == 403
    assert (await refused(port, "bad id!")).status == 400
    await owner.send(type="chat_message", session_id="m-private", content="   ")
    assert (await next_error(owner))["error_type"] == "empty_message"
    for _ in range(3):  # a burst of 2 is allowed; the third is over the connection's limit
        await owner.send(type="chat_message", session_id="m-private", content="hi")
    assert (await next_error(owner))["error_type"] == "rate_limited"

    metrics = await scrape(http)
    refused_total = "chatbuddy_handshakes_refused_total"
    assert metrics.value(refused_total, reason="session_access_denied") == 1
    assert metrics.value(refused_total, reason="invalid_identifier") == 1
    assert metrics.value("chatbuddy_errors_total", type="empty_message") == 1
    assert metrics.value("chatbuddy_errors_total", type="rate_limited") == 1
    assert metrics.value("chatbuddy_rate_limited_total", limit="connection") == 1


async def test_http_chat_is_counted_as_its_own_transport(http: Http) -> None:
    body = json.dumps({"session_id": "m-http", "message": "Szia!"})
    headers = {"Content-Type": "application/json"}
    first = await http.fetch("/api/v1/chat", method="POST", body=body, headers=headers)
    assert first.code == 200
    again = await http.fetch("/api/v1/chat", method="POST", body=body, headers=headers)
    assert again.code == 403  # no token
    metrics = await scrape(http)
    assert metrics.value("chatbuddy_messages_received_total", transport="http") == 1
    assert metrics.value("chatbuddy_messages_received_total", transport="websocket") == 0
    refusals = "chatbuddy_handshakes_refused_total"
    assert metrics.value(refusals, reason="session_access_denied") == 1


class TestConnectionsOverACap:
    """TCP connections refused as they are accepted count by the cap that refused them."""

    @pytest.fixture(params=["server_full", "too_many_connections"])
    def reason(self, request: pytest.FixtureRequest) -> str:
        reason: str = request.param
        return reason

    @pytest.fixture
    def settings(self, reason: str) -> Settings:
        cap = {"max_connections": 2} if reason == "server_full" else {"max_connections_per_ip": 2}
        return Settings(port=0, admin_token=ADMIN_TOKEN, **cap)  # type: ignore[arg-type]

    async def test_they_are_counted_by_reason(
        self, server: Server, port: int, http: Http, reason: str
    ) -> None:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await eventually(lambda: server.limits is not None and server.limits.open == 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        refusal = await asyncio.wait_for(reader.read(), TIMEOUT)
        assert refusal.startswith(b"HTTP/1.1 503")
        assert reason.encode() in refusal
        for _, held_writer in [*held, (reader, writer)]:
            held_writer.close()
        await eventually(lambda: server.limits is not None and server.limits.open == 0)

        metrics = await scrape(http)
        assert metrics.value("chatbuddy_connections_refused_total", reason=reason) == 1
        other = {"server_full", "too_many_connections"} - {reason}
        assert metrics.value("chatbuddy_connections_refused_total", reason=other.pop()) == 0


class TestAnotherAgent:
    """An agent that calls a language model reports through AgentRequest.metrics."""

    class ModelAgent:
        name = "llm-test"
        history_wanted = 0

        async def respond(self, request: AgentRequest) -> AgentReply:
            request.metrics.llm_request(
                model="tiny-1",
                outcome="ok",
                seconds=0.25,
                prompt_tokens=120,
                completion_tokens=30,
                first_token_seconds=0.05,
            )
            return AgentReply(agent="general", confidence=1.0, text="hello from a model")

    @pytest.fixture
    def agent(self) -> ModelAgent:
        return self.ModelAgent()

    async def test_its_requests_tokens_and_times_show(self, http: Http, connect: Connect) -> None:
        client = await connect("m-llm")
        await client.greeting()
        await client.chat("m-llm", "hi")
        metrics = await scrape(http)
        assert metrics.value("chatbuddy_llm_requests_total", model="tiny-1", outcome="ok") == 1
        assert metrics.value("chatbuddy_llm_tokens_total", model="tiny-1", kind="prompt") == 120
        assert metrics.value("chatbuddy_llm_tokens_total", model="tiny-1", kind="completion") == 30
        assert metrics.value("chatbuddy_llm_request_seconds_sum", model="tiny-1") == 0.25
        assert metrics.value("chatbuddy_llm_first_token_seconds_count", model="tiny-1") == 1
        # A reply given whole has no first chunk.
        assert metrics.value("chatbuddy_replies_total", agent="llm-test", route="general") == 1
        assert metrics.value("chatbuddy_reply_first_chunk_seconds_count", agent="llm-test") == 0


class TestASlowReader:
    @pytest.fixture
    def settings(self) -> Settings:
        return unlimited(port=0, admin_token=ADMIN_TOKEN, agent="echo")

    async def test_its_queued_bytes_and_its_close_show(
        self, server: Server, port: int, http: Http, connect: Connect
    ) -> None:
        from chatbuddy.cli.loadgen import client_frame  # type: ignore[import-not-found,unused-ignore]
        from tests.helpers import deaf_client

        filler = await connect("m-deaf")
        token = (await filler.greeting())["session_token"]
        for n in range(40):
            await filler.chat("m-deaf", f"{n:03d}" + "x" * 3990)
        filler.close()
        _, writer = await deaf_client(port, f"/ws/chat/m-deaf?session_token={token}")
        await eventually(lambda: server.node.connections_in("m-deaf") == 1, "the deaf tab")
        for _ in range(200):  # each asks for ~330 KB of history it never reads
            writer.write(client_frame(b'{"type":"history","after":0}'))
        await writer.drain()
        await eventually(lambda: server.node.connections_in("m-deaf") == 0, "the deaf tab closed")
        writer.close()  # the server's close handshake waits for it; now it is over
        metrics = await scrape_until(
            http, lambda m: m.value("chatbuddy_disconnects_total", code="4000", by="server") == 1
        )
        # Bytes waited for it, up to the cap (1 MiB) that closed it.
        assert 0 < metrics.value("chatbuddy_write_buffer_high_water_bytes") <= 1024 * 1024


class TestTheMetricsPort:
    @pytest.fixture
    def settings(self, unused_tcp_port: int) -> Settings:
        return Settings(port=0, admin_token=ADMIN_TOKEN, metrics_port=unused_tcp_port)

    async def test_it_serves_without_a_token_and_the_main_port_does_not(
        self, server: Server, http: Http
    ) -> None:
        url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        response = await AsyncHTTPClient().fetch(url)
        assert b"chatbuddy_connections" in response.body
        main = await http.fetch("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert main.code == 404


async def test_a_metrics_port_in_use_is_one_clear_error_before_anything_starts() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Server(Settings(port=0, admin_token=ADMIN_TOKEN, metrics_port=port))
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port}.*--metrics-port"):
            await server.start()
        assert server.port == 0  # nothing listens


class TestNoMetrics:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, admin_token=ADMIN_TOKEN, no_metrics=True)

    async def test_there_is_no_metrics_endpoint(self, http: Http, connect: Connect) -> None:
        client = await connect("m-off")
        await client.greeting()
        await client.chat("m-off", "hi")
        response = await http.fetch("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.code == 404


def test_a_metrics_port_without_metrics_is_refused_at_start() -> None:
    with pytest.raises(ConfigurationError, match="--no-metrics"):
        Settings(no_metrics=True, metrics_port=9100)


@pytest.fixture
async def redis_server_of_its_own(own_redis: RedisServer) -> AsyncIterator[Server]:
    settings = unlimited(port=0, admin_token=ADMIN_TOKEN, agent="echo")
    engine = build_engine("redis", redis_url=own_redis.url)
    async with Server(settings, engine=engine) as server:
        await eventually(server.engine.ready, "the engine ready")
        yield server


async def test_redis_round_trips_and_an_outage_show(
    redis_server_of_its_own: Server, own_redis: RedisServer
) -> None:
    server = redis_server_of_its_own
    http = Http(server.port)
    client = await ChatClient.open(server.port, "m-redis")
    await client.greeting()
    await client.chat("m-redis", "hi")
    metrics = await scrape(http)
    calls = "chatbuddy_engine_seconds_count"
    assert metrics.value(calls, engine="redis", operation="add_user_message") == 1
    assert metrics.value(calls, engine="redis", operation="add_reply") == 1
    assert metrics.value(calls, engine="redis", operation="subscribe") == 1
    assert metrics.value("chatbuddy_engine_ready", engine="redis") == 1

    own_redis.stop()
    await client.send(type="chat_message", session_id="m-redis", content="anyone?")
    assert (await client.error())["error_type"] == "storage_unavailable"
    client.close()
    metrics = await scrape(http)
    failures = [
        s
        for s in metrics.samples
        if s.name == "chatbuddy_engine_failures_total" and s.labels["engine"] == "redis"
    ]
    assert sum(s.value for s in failures) >= 1
    assert metrics.value("chatbuddy_engine_ready", engine="redis") == 0


async def test_a_sqlite_store_is_timed_and_its_local_bus_is_not(tmp_path: Path) -> None:
    settings = unlimited(port=0, admin_token=ADMIN_TOKEN, agent="echo")
    engine = build_engine("sqlite", folder=tmp_path)
    async with Server(settings, engine=engine) as server:
        client = await ChatClient.open(server.port, "m-file")
        await client.greeting()
        await client.chat("m-file", "hi")
        client.close()
        metrics = await scrape(Http(server.port))
    timed = {
        s.labels["operation"]
        for s in metrics.samples
        if s.name == "chatbuddy_engine_seconds_count" and s.labels["engine"] == "sqlite"
    }
    assert {"add_user_message", "add_reply"} <= timed
    assert not timed & {"subscribe", "publish"}  # the local bus's calls never leave the process


def test_label_values_past_the_cap_are_counted_as_other() -> None:
    metrics = PrometheusMetrics(engine="memory", node="n", ready=lambda: True)
    for n in range(MAX_LABEL_VALUES + 10):
        metrics.reply_sent("plugin", f"route-{n}", 0.01)
    scraped = Scrape(metrics.exposition().decode())
    routes = {s.labels["route"] for s in scraped.samples if s.name == "chatbuddy_replies_total"}
    assert len(routes) == MAX_LABEL_VALUES + 1
    assert scraped.value("chatbuddy_replies_total", agent="other", route="other") == 10


def test_the_high_water_mark_forgets_after_two_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from chatbuddy.metrics import prometheus

    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    metrics = PrometheusMetrics(engine="memory", node="n", ready=lambda: True)

    def high_water() -> float:
        return Scrape(metrics.exposition().decode()).value(
            "chatbuddy_write_buffer_high_water_bytes"
        )

    metrics.write_queued(5000)
    metrics.write_queued(3000)
    assert high_water() == 5000
    now[0] += prometheus.HIGH_WATER_WINDOW  # the next window: the last one's peak still shows
    assert high_water() == 5000
    now[0] += prometheus.HIGH_WATER_WINDOW
    assert high_water() == 0


RECORD = """
from chatbuddy.metrics.prometheus import PrometheusMetrics
metrics = PrometheusMetrics(engine="memory", node="n", ready=lambda: True)
for _ in range({n}):
    metrics.message_received("websocket")
metrics.connection_opened()
"""


def test_several_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (3, 4):
        subprocess.run(
            [sys.executable, "-c", RECORD.format(n=n)], env=env, cwd=ROOT, check=True, timeout=60
        )
    merged = subprocess.run(
        [sys.executable, "-c", RECORD.format(n=0) + "print(metrics.exposition().decode())"],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    scraped = Scrape(merged)
    assert scraped.value("chatbuddy_messages_received_total", transport="websocket") == 7


def test_every_metric_is_in_the_operations_guide() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    metrics = PrometheusMetrics(engine="memory", node="n", ready=lambda: True)
    names = set()
    for family in metrics.registry.collect():
        if family.name.startswith("chatbuddy_"):
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    listed = set(re.findall(r"^\| `(chatbuddy_[a-z_]+)` \|", guide, flags=re.M))
    assert listed == names
