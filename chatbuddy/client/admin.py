"""The admin API of one server: stats, sessions, and the live event tail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection

from chatbuddy.client.http import CONNECT_TIMEOUT, REQUEST_TIMEOUT, fetch, open_socket, reachable
from chatbuddy.client.target import Target
from chatbuddy.errors import Disconnected, ServerUnreachable, TokenMissing
from chatbuddy.wire.events import event_dict


class AdminClient:
    """Requests to the admin API, with the target's admin token."""

    def __init__(self, target: Target) -> None:
        # Where the server is and how to get its admin token.
        self.target = target

    async def get(self, path: str, **query: Any) -> dict[str, Any]:
        url = self.target.http(path)
        if query:
            url += "?" + urlencode(query)
        request = HTTPRequest(
            url,
            headers=await self._authorization(),
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=REQUEST_TIMEOUT,
        )
        document: dict[str, Any] = json.loads((await fetch(self.target, request)).body)
        return document

    async def stats(self) -> dict[str, Any]:
        return await self.get("/api/v1/websocket/stats")

    async def sessions(self, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        return await self.get("/api/v1/sessions", offset=offset, limit=limit)

    async def session(self, session_id: str) -> dict[str, Any]:
        return await self.get(f"/api/v1/sessions/{quote(session_id, safe='')}")

    async def watch(
        self, session_id: str | None = None, *, tool_arguments: bool = False
    ) -> EventStream:
        """Open the event stream (of one session, or all) now; read it with ``next()``.
        Tool calls come with their arguments only with ``tool_arguments``."""
        url = self.target.ws("/ws/admin/tail")
        query = {"session": session_id} if session_id else {}
        if tool_arguments:
            query["tool_args"] = "1"
        if query:
            url += "?" + urlencode(query)
        request = HTTPRequest(
            url, headers=await self._authorization(), connect_timeout=CONNECT_TIMEOUT
        )
        return EventStream(await open_socket(self.target, request), self.target.url)

    async def tail(
        self,
        session_id: str | None = None,
        *,
        on_open: Callable[[], None] | None = None,
        tool_arguments: bool = False,
    ) -> AsyncIterator[dict[str, Any]]:
        """Admin events as they happen; raises Disconnected when the socket goes.

        ``on_open`` is called once the server has accepted the stream.
        """
        stream = await self.watch(session_id, tool_arguments=tool_arguments)
        if on_open is not None:
            on_open()
        try:
            while True:
                yield await stream.next()
        finally:
            stream.close()

    async def _authorization(self) -> dict[str, str]:
        """The admin token header. With no token for a local server, a server that
        is not running is told as that (the truth a newcomer needs), not as a
        missing token."""
        try:
            token = self.target.admin_token()
        except TokenMissing:
            if self.target.is_local and not await reachable(self.target):
                raise ServerUnreachable(self.target.url) from None
            raise
        return {"Authorization": f"Bearer {token}"}


class EventStream:
    """An open admin event stream."""

    def __init__(self, ws: WebSocketClientConnection, url: str) -> None:
        # The open tail socket.
        self._ws = ws
        # The server's URL, for the message when it goes away.
        self._url = url

    async def next(self) -> dict[str, Any]:
        """The next event, validated against the event models; Disconnected if it closes."""
        frame = await self._ws.read_message()
        if frame is None:
            raise Disconnected(f"{self._url} closed the event stream")
        return event_dict(frame)

    def close(self) -> None:
        self._ws.close()
