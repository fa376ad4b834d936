"""Fixtures: a real ChatBuddy server on a free port (pytest-tornasync's http_server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import tornado.ioloop
import tornado.web

from chatbuddy.agents import Agent
from chatbuddy.engine import Engine
from chatbuddy.engine.redis import RedisEngine
from chatbuddy.server import Server, build_server
from chatbuddy.settings import Settings
from tests.helpers import ChatClient, eventually
from tests.redis_server import RedisServer

Connect = Callable[..., Awaitable[ChatClient]]

ADMIN_TOKEN = "test-admin-token-0123456789"


@pytest.fixture(autouse=True)
def private_runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Admin token files go to a folder of this test's own (servers started here inherit it)."""
    folder = tmp_path / "runtime"
    monkeypatch.setenv("CHATBUDDY_RUNTIME_DIR", str(folder))
    return folder


@pytest.fixture
def settings() -> Settings:
    """Production defaults and a known admin token; modules override this fixture."""
    return Settings(port=0, admin_token=ADMIN_TOKEN, allowed_origins=("https://shop.example",))


@pytest.fixture
def agent() -> Agent | None:
    """None: the agent the settings name. Modules override it with test agents."""
    return None


@pytest.fixture
def engine_kind() -> str:
    """The engine test servers use; modules parametrize it to run on both."""
    return "memory"


@pytest.fixture
def server(
    request: pytest.FixtureRequest,
    io_loop: tornado.ioloop.IOLoop,
    settings: Settings,
    agent: Agent | None,
    engine_kind: str,
) -> Iterator[Server]:
    """The server's parts, wired as `chatbuddy serve` wires them."""
    engine: Engine | None = None
    if engine_kind == "redis":
        engine = RedisEngine(
            url=request.getfixturevalue("redis_url"),
            session_ttl=settings.session_ttl,
            history_limit=settings.history_limit,
            heartbeat=0.05,
        )
    built = build_server(settings, agent=agent, engine=engine)
    io_loop.run_sync(built.service.start)
    if engine is not None:
        io_loop.run_sync(lambda: eventually(built.engine.ready, "Redis engine ready"))
    yield built
    io_loop.run_sync(lambda: built.service.drain(1.0))
    io_loop.run_sync(built.service.close)


@pytest.fixture
def app(server: Server) -> tornado.web.Application:
    return server.app


@pytest.fixture
def port(http_server: object, http_server_port: tuple[object, int]) -> int:
    """The port of the running test server."""
    return http_server_port[1]


@pytest.fixture
def connect(port: int) -> Iterator[Connect]:
    """Open chat connections to the test server; all are closed afterwards."""
    clients: list[ChatClient] = []

    async def open_client(session_id: str, **query: str) -> ChatClient:
        client = await ChatClient.connect(port, session_id, **query)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the test session (flushed before each test that uses it)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared Redis, empty."""
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url
