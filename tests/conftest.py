"""Fixtures: a real ChatBuddy server on a free port, started as `chatbuddy serve` starts it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from chatbuddy.agents import Agent
from chatbuddy.engine import Engine
from chatbuddy.server import Server
from chatbuddy.settings import Settings
from tests.builders import build_engine
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


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SQLite files go to a folder of this test's own, never the user's data folder
    (servers started here inherit it)."""
    folder = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    return folder


@pytest.fixture
def settings() -> Settings:
    """Production defaults, in memory, and a known admin token; modules override this
    fixture (and engine_kind, for the engine the server runs on)."""
    return Settings(
        port=0,
        admin_token=ADMIN_TOKEN,
        allowed_origins=("https://shop.example",),
        store="memory",
    )


@pytest.fixture
def agent() -> Agent | None:
    """None: the agent the settings name. Modules override it with test agents."""
    return None


@pytest.fixture
def engine_kind() -> str:
    """The engine test servers use; modules parametrize it to run on both."""
    return "memory"


@pytest.fixture
def engine(
    request: pytest.FixtureRequest, engine_kind: str, settings: Settings, tmp_path: Path
) -> Engine:
    """The engine of ``engine_kind`` (a Redis one gets the shared test Redis, emptied;
    a SQLite one a file in the test's own folder)."""
    redis_url = request.getfixturevalue("redis_url") if engine_kind == "redis" else None
    return build_engine(
        engine_kind,
        redis_url=redis_url,
        folder=tmp_path,
        session_ttl=settings.session_ttl,
        history_limit=settings.history_limit,
    )


@pytest.fixture
async def server(settings: Settings, agent: Agent | None, engine: Engine) -> AsyncIterator[Server]:
    """A running server, wired and started exactly as `chatbuddy serve` does it."""
    async with Server(settings, agent=agent, engine=engine) as running:
        await eventually(running.engine.ready, "the engine ready")
        yield running


@pytest.fixture
def port(server: Server) -> int:
    """The port of the running test server."""
    return server.port


class Http:
    """Plain HTTP requests to the test server, by path."""

    def __init__(self, port: int) -> None:
        # Where the test server listens.
        self.base = f"http://127.0.0.1:{port}"

    async def fetch(self, path: str, **options: Any) -> HTTPResponse:
        """GET (or what ``options`` say) ``path``; never raises for an HTTP error status."""
        options.setdefault("raise_error", False)
        response: HTTPResponse = await AsyncHTTPClient().fetch(self.base + path, **options)
        return response


@pytest.fixture
def http(port: int) -> Http:
    return Http(port)


@pytest.fixture
def connect(port: int) -> Iterator[Connect]:
    """Open chat connections to the test server; all are closed afterwards."""
    clients: list[ChatClient] = []

    async def open_client(session_id: str, **query: str) -> ChatClient:
        client = await ChatClient.open(port, session_id, **query)
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
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, to stop and start."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


#: The password of locked_redis.
REDIS_PASSWORD = "s3cret-pa$$word"


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that wants a password, with a Unix socket too."""
    server = RedisServer(
        tmp_path, password=REDIS_PASSWORD, extra_args=["--unixsocket", str(tmp_path / "redis.sock")]
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared Redis, empty."""
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url
