"""Talking to a ChatBuddy server: the admin API, the tail socket, the chat socket.

Network failures become the CLI's errors here, so commands only render.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, urlencode

import click
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from chatbuddy.wire.events import event_dict

from .errors import NotFound, ServerUnreachable, Unauthorized
from .target import Target

CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 15.0


class Disconnected(Exception):
    """A socket the server closed or lost."""


def _server_message(error: HTTPClientError) -> str:
    try:
        body = json.loads(error.response.body) if error.response is not None else {}
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return error.message or f"HTTP {error.code}"


def _cli_error(error: Exception, target: Target) -> click.ClickException:
    """The CLI error that explains a network error."""
    if not isinstance(error, HTTPClientError) or error.code == 599:
        return ServerUnreachable(target.url)
    message = _server_message(error)
    if error.code == 401:
        return Unauthorized(
            f"{target.url} refused the admin token ({message}); "
            "pass the right one with --token or CHATBUDDY_ADMIN_TOKEN"
        )
    if error.code == 403:
        return Unauthorized(message)
    if error.code == 404:
        return NotFound(message)
    return click.ClickException(f"server answered {error.code}: {message}")


class AdminClient:
    """The admin API of one server."""

    def __init__(self, target: Target) -> None:
        # Where the server is and how to get its admin token.
        self._target = target

    async def get(self, path: str, **query: Any) -> dict[str, Any]:
        url = self._target.http(path)
        if query:
            url += "?" + urlencode(query)
        request = HTTPRequest(
            url,
            headers={"Authorization": f"Bearer {self._target.admin_token()}"},
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=REQUEST_TIMEOUT,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except (HTTPClientError, OSError) as error:
            raise _cli_error(error, self._target) from None
        document: dict[str, Any] = json.loads(response.body)
        return document

    async def stats(self) -> dict[str, Any]:
        return await self.get("/api/v1/websocket/stats")

    async def sessions(self, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        return await self.get("/api/v1/sessions", offset=offset, limit=limit)

    async def session(self, session_id: str) -> dict[str, Any]:
        return await self.get(f"/api/v1/sessions/{quote(session_id, safe='')}")

    async def tail(
        self, session_id: str | None, *, on_open: Callable[[], None] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Events as they happen; raises Disconnected when the socket goes.

        ``on_open`` is called once the server has accepted the stream.
        """
        url = self._target.ws("/ws/admin/tail")
        if session_id:
            url += "?" + urlencode({"session": session_id})
        request = HTTPRequest(
            url,
            headers={"Authorization": f"Bearer {self._target.admin_token()}"},
            connect_timeout=CONNECT_TIMEOUT,
        )
        try:
            ws = await websocket_connect(request)
        except (HTTPClientError, OSError) as error:
            raise _cli_error(error, self._target) from None
        if on_open is not None:
            on_open()
        try:
            while (frame := await ws.read_message()) is not None:
                yield event_dict(frame)
        finally:
            ws.close()
        raise Disconnected(f"{self._target.url} closed the event stream")


class ChatSocket:
    """A chat connection, as the page would open it."""

    def __init__(self, ws: WebSocketClientConnection, greeting: dict[str, Any]) -> None:
        # The open socket.
        self.ws = ws
        # The connection_established data: ids and the session token.
        self.greeting = greeting

    @classmethod
    async def open(
        cls, target: Target, session_id: str, *, user_id: str | None, session_token: str | None
    ) -> ChatSocket:
        query = {k: v for k, v in {"user_id": user_id, "session_token": session_token}.items() if v}
        url = target.ws(f"/ws/chat/{quote(session_id, safe='')}")
        if query:
            url += "?" + urlencode(query)
        try:
            ws = await websocket_connect(HTTPRequest(url, connect_timeout=CONNECT_TIMEOUT))
        except (HTTPClientError, OSError) as error:
            raise _cli_error(error, target) from None
        socket = cls(ws, {})
        first = await socket.receive()
        if first.get("type") != "connection_established":
            raise Disconnected(f"unexpected first frame {first.get('type')!r}")
        socket.greeting = first["data"]
        return socket

    async def send(self, **frame: Any) -> None:
        await self.ws.write_message(json.dumps(frame))

    async def receive(self) -> dict[str, Any]:
        frame = await self.ws.read_message()
        if frame is None:
            raise Disconnected("the server closed the chat connection")
        message: dict[str, Any] = json.loads(frame)
        return message

    def close(self) -> None:
        self.ws.close()
