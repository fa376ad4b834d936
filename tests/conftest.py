"""Fixtures: a real ChatBuddy server on a free port (pytest-tornasync's http_server)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest
import tornado.ioloop
import tornado.web

from chatbuddy.agents import Agent
from chatbuddy.server import Server, build_server
from chatbuddy.settings import Settings
from tests.helpers import ChatClient

Connect = Callable[..., Awaitable[ChatClient]]


@pytest.fixture
def settings() -> Settings:
    """Production defaults; modules override this fixture to change them."""
    return Settings(port=0)


@pytest.fixture
def agent() -> Agent | None:
    """None: the agent the settings name. Modules override it with test agents."""
    return None


@pytest.fixture
def server(
    io_loop: tornado.ioloop.IOLoop, settings: Settings, agent: Agent | None
) -> Iterator[Server]:
    """The server's parts, wired as `chatbuddy serve` wires them."""
    built = build_server(settings, agent=agent)
    io_loop.run_sync(built.service.start)
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
