"""Test helpers: the client's chat socket with the tests' timeout; waiting, never sleeping."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import Any

from chatbuddy.cli.loadgen import _request, accept_of  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.client.chat import ChatSocket, Received
from chatbuddy.errors import ClientFailure

#: The one timeout every wait in the tests is a multiple of. Slow CI machines
#: scale it with CHATBUDDY_TEST_TIMEOUT_SCALE instead of editing tests.
TIMEOUT = 5.0 * float(os.environ.get("CHATBUDDY_TEST_TIMEOUT_SCALE", "1"))


class ChatClient(ChatSocket):
    """A chat connection whose every wait fails after TIMEOUT."""

    @classmethod
    async def open(cls, port: int, session_id: str, **query: str) -> ChatClient:
        """Open ``/ws/chat/{session_id}`` on the local test server; raises ClientFailure
        if the handshake is refused."""
        socket = await ChatSocket.connect(
            f"http://127.0.0.1:{port}", session_id, timeout=TIMEOUT, **query
        )
        return cls(socket.ws, timeout=TIMEOUT)

    async def chat(self, session_id: str, content: str, **extra: Any) -> Received:
        """Send a chat message and return the completed reply's data."""
        await self.send(type="chat_message", session_id=session_id, content=content, **extra)
        _, response = await self.reply()
        return response

    async def error(self) -> Received:
        """The next frame, which must be an error; its data."""
        data: Received = (await self.expect("error"))["data"]
        return data


async def refused(port: int, session_id: str, **query: str) -> ClientFailure:
    """Connect expecting the handshake to be refused; the refusal (status, error_type)."""
    try:
        client = await ChatClient.open(port, session_id, **query)
    except ClientFailure as failure:
        return failure
    client.close()
    raise AssertionError("the handshake was accepted")


async def eventually(predicate: Callable[[], bool], what: str = "condition") -> None:
    """Wait (up to TIMEOUT) for something another process or task makes true."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def deaf_client(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that completes the handshake and then never reads again."""
    request, key = _request("127.0.0.1", port, path)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up at once
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert b" 101 " in head
    assert accept_of(key) in head
    return reader, writer
