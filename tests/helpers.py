"""Test helpers: a chat client that waits for frames, never sleeps."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

#: The one timeout every wait in the tests is a multiple of. Slow CI machines
#: scale it with CHATBUDDY_TEST_TIMEOUT_SCALE instead of editing tests.
TIMEOUT = 5.0 * float(os.environ.get("CHATBUDDY_TEST_TIMEOUT_SCALE", "1"))

Frame = dict[str, Any]


class ChatClient:
    """A WebSocket chat client for tests: send dicts, await typed frames."""

    def __init__(self, ws: WebSocketClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, port: int, session_id: str, **query: str) -> ChatClient:
        """Open ``/ws/chat/{session_id}``; raises HTTPClientError if refused."""
        url = f"ws://127.0.0.1:{port}/ws/chat/{quote(session_id, safe='')}"
        if query:
            url += "?" + urlencode(query)
        ws = await asyncio.wait_for(websocket_connect(HTTPRequest(url)), TIMEOUT)
        return cls(ws)

    async def send(self, **frame: Any) -> None:
        await self.ws.write_message(json.dumps(frame))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.write_message(data, binary=isinstance(data, bytes))

    async def receive(self) -> Frame:
        """The next frame; fails if none comes within TIMEOUT or the socket closes."""
        raw = await asyncio.wait_for(self.ws.read_message(), TIMEOUT)
        assert raw is not None, f"connection closed (code {self.ws.close_code})"
        frame: Frame = json.loads(raw)
        return frame

    async def expect(self, frame_type: str) -> Frame:
        """The next frame, which must be of ``frame_type``."""
        frame = await self.receive()
        assert frame["type"] == frame_type, f"expected {frame_type}, got {frame}"
        return frame

    async def greeting(self) -> Frame:
        """The ``connection_established`` data every connection starts with."""
        return (await self.expect("connection_established"))["data"]  # type: ignore[no-any-return]

    async def reply(self) -> tuple[list[Frame], Frame]:
        """Chunks, then the chat_response that completes them."""
        chunks: list[Frame] = []
        while True:
            frame = await self.receive()
            if frame["type"] == "chat_response_chunk":
                chunks.append(frame["data"])
            elif frame["type"] == "chat_response":
                return chunks, frame["data"]
            else:
                raise AssertionError(f"expected a reply, got {frame}")

    async def chat(self, session_id: str, content: str, **extra: Any) -> Frame:
        """Send a chat message and return the completed reply's data."""
        await self.send(type="chat_message", session_id=session_id, content=content, **extra)
        _, response = await self.reply()
        return response

    async def error(self) -> Frame:
        """The next frame, which must be an error; its data."""
        return (await self.expect("error"))["data"]  # type: ignore[no-any-return]

    async def closed(self) -> int | None:
        """Wait until the server closes the connection; its close code."""
        while await asyncio.wait_for(self.ws.read_message(), TIMEOUT) is not None:
            pass
        return self.ws.close_code

    def close(self) -> None:
        self.ws.close()


async def refused(port: int, session_id: str, **query: str) -> HTTPClientError:
    """Connect expecting the handshake to be refused; the HTTP error."""
    try:
        client = await ChatClient.connect(port, session_id, **query)
    except HTTPClientError as error:
        return error
    client.close()
    raise AssertionError("the handshake was accepted")


async def eventually(predicate: Callable[[], bool], what: str = "condition") -> None:
    """Wait (up to TIMEOUT) for something another process or task makes true."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
