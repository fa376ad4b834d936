"""The admin API of one server: stats, sessions, and the live event tail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection

from chatbuddy.client.http import (
    CONNECT_TIMEOUT,
    REQUEST_TIMEOUT,
    failure,
    fetch,
    open_socket,
    reachable,
)
from chatbuddy.client.target import Target
from chatbuddy.errors import ClientFailure, Disconnected, ServerUnreachable, TokenMissing
from chatbuddy.wire.events import event_dict

#: How long an export may take in all (it streams; this only stops a hung one).
EXPORT_TIMEOUT = 3600.0


class AdminClient:
    """Requests to the admin API, with the target's admin token."""

    def __init__(self, target: Target) -> None:
        # Where the server is and how to get its admin token.
        self.target = target

    async def get(self, path: str, **query: Any) -> dict[str, Any]:
        return await self.request("GET", path, **query)

    async def request(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, **query: Any
    ) -> dict[str, Any]:
        """``method path?query`` with the admin token (and ``body`` as JSON); the JSON
        document answered (a ClientFailure if refused)."""
        headers = await self._authorization()
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            self._url(path, query),
            method=method,
            headers=headers,
            body=json.dumps(body) if body is not None else None,
            allow_nonstandard_methods=True,
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=REQUEST_TIMEOUT,
        )
        document: dict[str, Any] = json.loads((await fetch(self.target, request)).body)
        return document

    def _url(self, path: str, query: dict[str, Any]) -> str:
        url = self.target.http(path)
        given = {key: value for key, value in query.items() if value is not None}
        return url + ("?" + urlencode(given) if given else "")

    # -- taking conversations over (docs/admin.md) ----------------------------------

    def _of(self, session_id: str, what: str) -> str:
        return f"/api/v1/sessions/{quote(session_id, safe='')}/{what}"

    # ``operator`` None: a token of the tokens file acts under its own name.

    async def take(self, session_id: str, operator: str | None) -> dict[str, Any]:
        """Take the conversation over, or extend the hold (a Conflict if someone else holds it)."""
        return await self.request("POST", self._of(session_id, "hold"), body={"operator": operator})

    async def release(
        self, session_id: str, operator: str | None, *, force: bool = False
    ) -> dict[str, Any]:
        """Give it back to the assistant (``force``: whoever holds it; an admin's to do)."""
        if force:
            return await self.request("DELETE", self._of(session_id, "hold"), force=1)
        return await self.request("DELETE", self._of(session_id, "hold"), operator=operator)

    async def say(self, session_id: str, operator: str | None, content: str) -> dict[str, Any]:
        body = {"operator": operator, "content": content}
        return await self.request("POST", self._of(session_id, "messages"), body=body)

    async def note(self, session_id: str, operator: str, content: str) -> dict[str, Any]:
        body = {"operator": operator, "content": content}
        return await self.request("POST", self._of(session_id, "notes"), body=body)

    async def typing(self, session_id: str, operator: str, on: bool) -> dict[str, Any]:
        body = {"operator": operator, "typing": on}
        return await self.request("POST", self._of(session_id, "typing"), body=body)

    async def read(self, session_id: str, operator: str, message_id: int) -> dict[str, Any]:
        body = {"operator": operator, "message_id": message_id}
        return await self.request("POST", self._of(session_id, "read"), body=body)

    async def waiting(self, *, limit: int = 50) -> dict[str, Any]:
        return await self.get("/api/v1/handoffs", limit=limit)

    async def stats(self) -> dict[str, Any]:
        return await self.get("/api/v1/websocket/stats")

    async def sessions(self, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        return await self.get("/api/v1/sessions", offset=offset, limit=limit)

    async def session(self, session_id: str) -> dict[str, Any]:
        return await self.get(f"/api/v1/sessions/{quote(session_id, safe='')}")

    async def erase_session(self, session_id: str) -> dict[str, Any]:
        """Erase one session (and close its tabs); ``{"erased": [...], "close_code"}``."""
        return await self.request("DELETE", f"/api/v1/sessions/{quote(session_id, safe='')}")

    async def erase_user(self, user_id: str) -> dict[str, Any]:
        """Erase every session of a user (and close their tabs)."""
        return await self.request("DELETE", f"/api/v1/users/{quote(user_id, safe='')}/sessions")

    async def export(
        self, on_session: Callable[[dict[str, Any]], None], *, since: str | None = None
    ) -> int:
        """Stream every kept session with its messages to ``on_session`` as it arrives,
        one at a time; how many there were. Raises ClientFailure if the stream was cut
        short (the server's closing line is missing)."""
        lines = _Lines(on_session)
        request = HTTPRequest(
            self._url("/api/v1/export", {"since": since}),
            headers=await self._authorization(),
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=EXPORT_TIMEOUT,
            header_callback=lines.header,
            streaming_callback=lines.feed,
        )
        try:
            await AsyncHTTPClient().fetch(request)
        except HTTPClientError as error:
            raise lines.refusal(error, self.target) from None
        except OSError as error:
            raise failure(error, self.target) from None
        if lines.complete is None:
            raise ClientFailure(f"{self.target.url} stopped the export before its end")
        return lines.complete

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


class _Lines:
    """An export's body as it arrives: JSON lines, the last of which says it is complete.
    An error's body (a refusal) is kept whole instead."""

    def __init__(self, on_session: Callable[[dict[str, Any]], None]) -> None:
        # Gets each session's document.
        self._on_session = on_session
        # A partial line, until its end arrives.
        self._pending = b""
        # The status of the response (from its first header line).
        self._status = 200
        # An error's body.
        self._error_body = b""
        # The session count from the closing line; None until it arrives.
        self.complete: int | None = None

    def header(self, line: str) -> None:
        if line.startswith("HTTP/"):
            self._status = int(line.split()[1])

    def feed(self, chunk: bytes) -> None:
        if self._status >= 400:
            self._error_body += chunk
            return
        *whole, self._pending = (self._pending + chunk).split(b"\n")
        for raw in whole:
            if not raw.strip():
                continue
            document = json.loads(raw)
            if document.get("complete"):
                self.complete = int(document["sessions"])
            else:
                self._on_session(document)

    def refusal(self, error: HTTPClientError, target: Target) -> ClientFailure:
        """The failure as fetch() would tell it, from the body kept here."""
        error.response = _Body(self._error_body)  # type: ignore[assignment]
        return failure(error, target)


class _Body:
    """What failure() reads of a response: its body."""

    def __init__(self, body: bytes) -> None:
        self.body = body


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
