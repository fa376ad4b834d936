"""permessage-deflate: off unless --compression, then with this server's window
limits written into whatever a client offers, and any offer it cannot honour
declined (the socket opens uncompressed) instead of failing the handshake."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from chatbuddy.chat import frames
from chatbuddy.records import utcnow
from chatbuddy.server import Server
from chatbuddy.settings import Settings
from chatbuddy.web.chat_socket import ChatSocketHandler
from chatbuddy.web.frame_writer import RSV1, frame_header
from chatbuddy.wire.close_codes import Close
from chatbuddy.wire.compression import Deflate
from tests.conftest import ADMIN_TOKEN
from tests.helpers import TIMEOUT, ChatClient

QUESTION = "Mennyi az ára a Samsung Galaxy S24-nek?"
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"


class TestTheOffer:
    """What the server answers to a client's Sec-WebSocket-Extensions."""

    deflate = Deflate(window_bits=11, mem_level=2)

    def test_a_browsers_offer_gets_our_windows(self) -> None:
        assert self.deflate.accept(BROWSER_OFFER) == (
            "permessage-deflate; server_max_window_bits=11; client_max_window_bits=11"
        )

    def test_smaller_windows_than_ours_are_kept(self) -> None:
        offer = "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"
        assert self.deflate.accept(offer) == (
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"
        )

    def test_no_context_takeover_is_granted(self) -> None:
        offer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        assert self.deflate.accept(offer) == (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=11"
        )

    def test_the_client_window_is_not_limited_unless_offered(self) -> None:
        # RFC 7692 7.1.2.2: the server may only answer client_max_window_bits if offered.
        assert self.deflate.accept("permessage-deflate") == (
            "permessage-deflate; server_max_window_bits=11"
        )

    @pytest.mark.parametrize(
        "offer",
        [
            None,
            "",
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=8",  # zlib cannot compress so
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=0x0f",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; mystery=1",
            "permessage-deflate; client_max_window_bits; client_max_window_bits",
            "permessage-deflate" + "; server_no_context_takeover" * 1000,
        ],
        ids=[
            "none",
            "empty",
            "another-extension",
            "window-8",
            "window-16",
            "client-window-7",
            "window-without-value",
            "window-in-hex",
            "flag-with-value",
            "unknown-parameter",
            "repeated-parameter",
            "huge",
        ],
    )
    def test_an_offer_it_cannot_honour_is_declined(self, offer: str | None) -> None:
        assert self.deflate.accept(offer) is None

    def test_the_first_acceptable_offer_wins(self) -> None:
        offer = "permessage-deflate; mystery=1, permessage-deflate; client_max_window_bits=10"
        assert self.deflate.accept(offer) == (
            "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10"
        )

    def test_windows_zlib_cannot_use_are_refused_at_start(self) -> None:
        with pytest.raises(ValueError, match="window_bits must be 9-15"):
            Deflate(window_bits=8)

    def test_its_memory_follows_zlibs_formula(self) -> None:
        assert self.deflate.compressor_bytes() == 2**13 + 2**11
        assert self.deflate.compressor_bytes(15) == 2**17 + 2**11


@contextlib.asynccontextmanager
async def counting_proxy(port: int) -> AsyncIterator[tuple[int, bytearray]]:
    """A TCP relay to ``port`` on a port of its own; the bytearray gets what it
    carried from the server to clients (what a reply costs on the wire)."""
    carried = bytearray()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if count:
                    carried.extend(data)
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(
            pipe(client_reader, server_writer, count=False),
            pipe(server_reader, client_writer, count=True),
        )

    relay_server = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield relay_server.sockets[0].getsockname()[1], carried
    finally:
        relay_server.close()


def extensions(ws: WebSocketClientConnection) -> str | None:
    """The Sec-WebSocket-Extensions the server answered, if any."""
    assert ws.headers is not None
    return ws.headers.get("Sec-WebSocket-Extensions")


async def bytes_of_a_conversation(port: int, session_id: str, *, compress: bool) -> int:
    """Bytes the server sent for a greeting and three answers to QUESTION."""
    async with counting_proxy(port) as (relay_port, carried):
        request = HTTPRequest(f"ws://127.0.0.1:{relay_port}/ws/chat/{session_id}")
        ws = await asyncio.wait_for(
            websocket_connect(request, compression_options={} if compress else None), TIMEOUT
        )
        client = ChatClient(ws, timeout=TIMEOUT)
        await client.greeting()
        for _ in range(3):
            reply = await client.chat(session_id, QUESTION)
            assert "Samsung Galaxy S24" in reply["content"]
        client.close()
        return len(carried)


def server_frames(wire: bytes) -> list[tuple[bool, int]]:
    """(compressed, payload length) of each frame a server sent after its 101 answer."""
    rest = wire[wire.index(b"\r\n\r\n") + 4 :]
    frames = []
    while len(rest) >= 2:
        length, start = rest[1] & 0x7F, 2  # a server's frames are not masked
        if length == 126:
            length, start = int.from_bytes(rest[2:4]), 4
        elif length == 127:
            length, start = int.from_bytes(rest[2:10]), 10
        frames.append((bool(rest[0] & RSV1), length))
        rest = rest[start + length :]
    return frames


class TestWithCompression:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, admin_token=ADMIN_TOKEN, rate_limit=0, compression=True)

    async def test_a_client_that_offers_it_chats_compressed_within_our_window(
        self, port: int
    ) -> None:
        request = HTTPRequest(f"ws://127.0.0.1:{port}/ws/chat/deflate-1")
        ws = await websocket_connect(request, compression_options={})
        answered = str(extensions(ws)).split("; ")
        assert answered[0] == "permessage-deflate"
        assert sorted(answered[1:]) == ["client_max_window_bits=11", "server_max_window_bits=11"]
        client = ChatClient(ws, timeout=TIMEOUT)
        await client.greeting()
        reply = await client.chat("deflate-1", QUESTION)
        assert "Samsung Galaxy S24" in reply["content"]
        client.close()

    async def test_a_conversation_costs_far_fewer_bytes_compressed(self, port: int) -> None:
        plain = await bytes_of_a_conversation(port, "deflate-2", compress=False)
        compressed = await bytes_of_a_conversation(port, "deflate-3", compress=True)
        assert compressed < plain / 2, (compressed, plain)

    async def test_the_greeting_with_the_session_token_is_never_compressed(self, port: int) -> None:
        async with counting_proxy(port) as (relay_port, wire):
            request = HTTPRequest(f"ws://127.0.0.1:{relay_port}/ws/chat/deflate-4")
            ws = await websocket_connect(request, compression_options={})
            client = ChatClient(ws, timeout=TIMEOUT)
            greeting = await client.greeting()
            await client.chat("deflate-4", QUESTION)
            client.close()
        frames = server_frames(bytes(wire))
        assert greeting["session_token"].encode() in wire  # in the clear: never compressed
        assert [compressed for compressed, _ in frames[:2]] == [False, True]
        assert all(compressed for compressed, _ in frames[1:-1])  # the last is the close

    async def test_frames_of_one_turn_arrive_compressed_in_order_whatever_their_size(
        self, port: int, server: Server
    ) -> None:
        request = HTTPRequest(f"ws://127.0.0.1:{port}/ws/chat/sizes-2")
        client = ChatClient(
            await websocket_connect(request, compression_options={}), timeout=TIMEOUT
        )
        await client.greeting()
        (handler,) = server.node.connections()
        assert isinstance(handler, ChatSocketHandler)
        marks = ["a" * 10, "b" * 300, "c" * 70_000, "d"]
        for mark in marks:  # one turn: one write, each frame compressed after the one before
            handler.send(frames.pong("sizes-2", mark, utcnow()))
        for mark in marks:
            assert (await client.expect("pong"))["data"]["client_timestamp"] == mark
        client.close()

    async def test_a_message_that_inflates_past_the_frame_limit_closes_1009(
        self, port: int
    ) -> None:
        request = HTTPRequest(f"ws://127.0.0.1:{port}/ws/chat/bomb-1")
        client = ChatClient(
            await websocket_connect(request, compression_options={}), timeout=TIMEOUT
        )
        await client.greeting()
        bomb = json.dumps(
            {"type": "chat_message", "session_id": "bomb-1", "content": "a" * 200_000}
        )
        await client.send_raw(bomb)  # a few hundred bytes on the wire
        assert await client.closed() == Close.TOO_BIG

    @pytest.mark.parametrize(
        "offer",
        [
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; mystery=1",
            "permessage-deflate; client_max_window_bits=99",
        ],
        ids=["window-8", "unknown-parameter", "bad-client-window"],
    )
    async def test_an_offer_it_cannot_honour_opens_uncompressed(
        self, port: int, offer: str
    ) -> None:
        # (Tornado alone aborts these handshakes without a word.)
        request = HTTPRequest(
            f"ws://127.0.0.1:{port}/ws/chat/odd-offer",
            headers={"Sec-WebSocket-Extensions": offer},
        )
        ws = await websocket_connect(request)
        assert extensions(ws) is None
        client = ChatClient(ws, timeout=TIMEOUT)
        await client.greeting()
        assert "Samsung Galaxy S24" in (await client.chat("odd-offer", QUESTION))["content"]
        client.close()


async def test_without_the_option_nothing_is_compressed(port: int) -> None:
    request = HTTPRequest(f"ws://127.0.0.1:{port}/ws/chat/plain-1")
    ws = await websocket_connect(request, compression_options={})
    assert extensions(ws) is None
    ws.close()


def test_a_compressed_frame_is_marked_with_rsv1() -> None:
    assert frame_header(125, compressed=True) == bytes((0xC1, 125))
    assert frame_header(70_000, compressed=True)[:2] == bytes((0xC1, 127))
