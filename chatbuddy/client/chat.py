"""A chat connection, as the page opens one: the CLI's `send`, the tests, any script.

Every frame received is checked against the protocol's models
(:func:`chatbuddy.wire.server_frames.parse_server_message`), so a client of this
module notices a server that strays from docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection

from chatbuddy.backoff import Backoff
from chatbuddy.client.http import CONNECT_TIMEOUT, open_socket
from chatbuddy.client.target import Target
from chatbuddy.errors import ClientFailure, Disconnected
from chatbuddy.wire.server_frames import parse_server_message
from chatbuddy.wire.subprotocol import offer

#: A frame the server sent, decoded from JSON (after validation against the models).
Received = dict[str, Any]


@dataclass
class Answer:
    """What one chat message got: its reply or its error, the chunks, how long it took."""

    seconds: float
    chunks: list[Received]
    reply: Received | None = None
    error: Received | None = None


#: Server frames beside the replies: about the conversation's people, or what the assistant
#: is doing (reply_status).
ASIDES = frozenset(
    {
        "handoff_pending",
        "operator_joined",
        "operator_left",
        "typing",
        "read",
        "reaction",
        "reply_status",
    }
)


class ChatSocket:
    """One open chat connection: send frames, receive validated frames as dicts."""

    def __init__(self, ws: WebSocketClientConnection, *, timeout: float | None = None) -> None:
        # The open socket.
        self.ws = ws
        # Each receive waits at most this long (None: as long as it takes).
        self._timeout = timeout

    @classmethod
    async def connect(
        cls,
        target: Target | str,
        session_id: str,
        *,
        session_token: str | None = None,
        identity: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - kept by the socket for every wait
        **query: str | None,
    ) -> ChatSocket:
        """Open ``/ws/chat/{session_id}`` (``query``: user_id, ...); the session token
        and the customer's signed identity (a JWT) travel in the subprotocol offer,
        never in the URL.

        Raises a ClientFailure: ServerUnreachable, or the server's refusal with
        its ``status`` and ``error_type``. The greeting is the first frame.
        """
        if isinstance(target, str):
            target = Target(target)
        url = target.ws(f"/ws/chat/{quote(session_id, safe='')}")
        given = {name: value for name, value in query.items() if value is not None}
        if given:
            url += "?" + urlencode(given)
        request = HTTPRequest(url, connect_timeout=CONNECT_TIMEOUT)
        connecting = open_socket(target, request, subprotocols=offer(session_token, identity))
        ws = await (asyncio.wait_for(connecting, timeout) if timeout else connecting)
        return cls(ws, timeout=timeout)

    async def send(self, **frame: Any) -> None:
        await self.ws.write_message(json.dumps(frame))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.write_message(data, binary=isinstance(data, bytes))

    async def receive(self) -> Received:
        """The next frame; raises Disconnected if the server closes the connection."""
        reading = self.ws.read_message()
        raw = await (asyncio.wait_for(reading, self._timeout) if self._timeout else reading)
        if raw is None:
            raise Disconnected(f"the server closed the chat connection (code {self.ws.close_code})")
        parse_server_message(raw)  # raises if the frame is not what the protocol says
        frame: Received = json.loads(raw)
        return frame

    async def expect(self, frame_type: str) -> Received:
        """The next frame, which must be of ``frame_type``."""
        frame = await self.receive()
        if frame["type"] != frame_type:
            raise ClientFailure(f"expected a {frame_type} frame, got {frame}")
        return frame

    async def greeting(self) -> Received:
        """The ``connection_established`` data every connection starts with."""
        data: Received = (await self.expect("connection_established"))["data"]
        return data

    async def reply(self) -> tuple[list[Received], Received]:
        """Chunks, then the ``chat_response`` that completes them (their data); the
        ``reply_status`` frames between them (a tool running) are passed over."""
        """Chunks, then the ``chat_response`` that completes them (their data).

        Frames about who is in the conversation (a hand-off pending, an operator,
        typing, read marks, reactions) may come between; they are passed over.
        """
        chunks: list[Received] = []
        while True:
            frame = await self.receive()
            if frame["type"] == "chat_response_chunk":
                chunks.append(frame["data"])
            elif frame["type"] == "chat_response":
                return chunks, frame["data"]
            elif frame["type"] not in ASIDES:
                raise ClientFailure(f"expected a reply, got {frame}")

    async def ask(
        self,
        session_id: str,
        content: str,
        *,
        on_chunk: Callable[[str], None] | None = None,
        retries: int = 10,
    ) -> Answer:
        """Send a chat message and wait for its reply or its error.

        A ``rate_limited`` refusal is retried (with backoff, up to ``retries``
        times); frames of other messages (another tab's) are passed over.
        """
        started = time.perf_counter()
        backoff = Backoff(first=0.2, cap=2.0)
        for attempt in range(retries + 1):
            await self.send(type="chat_message", session_id=session_id, content=content)
            chunks: list[Received] = []
            while True:
                frame = await self.receive()
                kind, data = frame["type"], frame.get("data", {})
                if kind == "chat_response_chunk":
                    chunks.append(data)
                    if on_chunk is not None:
                        on_chunk(data["delta"])
                elif kind == "chat_response":
                    return Answer(time.perf_counter() - started, chunks, reply=data)
                elif kind == "error":
                    break
            if data.get("error_type") != "rate_limited" or attempt == retries:
                return Answer(time.perf_counter() - started, chunks, error=data)
            await asyncio.sleep(backoff.delay())
        raise AssertionError("unreachable")

    async def closed(self) -> int | None:
        """Wait until the server closes the connection; its close code."""
        while True:
            reading = self.ws.read_message()
            raw = await (asyncio.wait_for(reading, self._timeout) if self._timeout else reading)
            if raw is None:
                return self.ws.close_code

    def close(self) -> None:
        self.ws.close()
