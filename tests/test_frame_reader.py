"""The connection's frame reader: frames parsed from whatever the socket delivered,
by the rules of RFC 6455, against a real server and a raw socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import struct
import zlib

import pytest

from chatbuddy.cli.loadgen import (  # type: ignore[import-not-found,unused-ignore]
    _request,
    client_frame,
)
from chatbuddy.settings import Settings
from chatbuddy.web.frame_reader import FrameTooLarge, apply_mask, parse_frame
from tests.builders import unlimited
from tests.helpers import TIMEOUT

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def xor_byte_by_byte(mask: bytes, data: bytes) -> bytes:
    return bytes(byte ^ mask[index % 4] for index, byte in enumerate(data))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 4097, 70_000])
def test_masking_is_the_xor_of_the_repeated_key(size: int) -> None:
    mask, data = secrets.token_bytes(4), secrets.token_bytes(size)
    assert apply_mask(mask, data) == xor_byte_by_byte(mask, data)
    assert apply_mask(mask, apply_mask(mask, data)) == data


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65_535, 65_536])
def test_a_frame_is_none_until_its_last_byte_and_then_whole(size: int) -> None:
    payload = secrets.token_bytes(size)
    frame = client_frame(payload, BINARY)
    wire = b"xx" + frame + client_frame(b"next")  # starts at 2; another frame follows
    for end in range(2, 2 + len(frame), max(1, len(frame) // 50)):
        assert parse_frame(wire[:end], 2, 1 << 20) is None
    parsed = parse_frame(wire, 2, 1 << 20)
    assert parsed is not None
    (fin, rsv, opcode, got), after = parsed
    assert (fin, rsv, opcode, got) == (True, 0, BINARY, payload)
    assert after == 2 + len(frame)
    assert parse_frame(wire, after, 1 << 20) == ((True, 0, TEXT, b"next"), len(wire))


def test_a_frame_over_the_limit_is_refused_from_its_header_alone() -> None:
    header = struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 40)
    with pytest.raises(FrameTooLarge):
        parse_frame(header, 0, 64 * 1024)


def frame(payload: bytes, opcode: int = TEXT, *, fin: bool = True, rsv: int = 0) -> bytes:
    """A masked client frame with the FIN and reserved bits given."""
    built = bytearray(client_frame(payload, opcode))
    built[0] = (0x80 if fin else 0) | rsv | opcode
    return bytes(built)


def chat(session_id: str, content: str) -> bytes:
    return json.dumps(
        {"type": "chat_message", "session_id": session_id, "content": content}
    ).encode()


def deflated(data: bytes) -> bytes:
    """``data`` as a permessage-deflate payload (RFC 7692 §7.2.1), a 512-byte window."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -9)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


class RawSocket:
    """A WebSocket client written by hand: what it sends is exactly the bytes given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        # Inflates the server's compressed frames (one context for the connection).
        self.inflater = zlib.decompressobj(-15)

    @classmethod
    async def open(cls, port: int, session_id: str, *, deflate: bool = False) -> RawSocket:
        request, _ = _request("127.0.0.1", port, f"/ws/chat/{session_id}")
        if deflate:
            offer = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            request = request[:-2] + offer + b"\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert b" 101 " in head
        assert (b"permessage-deflate" in head) == deflate
        socket = cls(reader, writer)
        assert (await socket.json())["type"] == "connection_established"
        return socket

    async def send(self, *pieces: bytes) -> None:
        """Each piece in a write of its own, the socket drained between them."""
        for piece in pieces:
            self.writer.write(piece)
            await self.writer.drain()

    async def frame(self) -> tuple[int, bytes]:
        """The server's next frame: its opcode and payload (a server does not mask)."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        payload = await self.reader.readexactly(size)
        if first & 0x40:
            payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
        return first & 0x0F, payload

    async def json(self) -> dict[str, object]:
        opcode, payload = await self.frame()
        assert opcode == TEXT
        parsed: dict[str, object] = json.loads(payload)
        return parsed

    async def reply(self) -> str:
        """The content of the next chat_response (skipping the echo and the chunks)."""
        while True:
            received = await self.json()
            if received["type"] == "chat_response":
                data = received["data"]
                assert isinstance(data, dict)
                return str(data["content"])

    async def closed(self) -> bool:
        """Whether the server ends the connection (it sends nothing more that matters)."""
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(self.reader.read(), TIMEOUT)
        return self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
def settings() -> Settings:
    return unlimited(agent="echo")


async def test_a_message_sent_one_byte_at_a_time_is_answered(port: int) -> None:
    socket = await RawSocket.open(port, "bytewise")
    wire = frame(chat("bytewise", "slowly"))
    await socket.send(*(wire[index : index + 1] for index in range(len(wire))))
    assert "slowly" in await socket.reply()
    socket.close()


async def test_messages_that_arrive_in_one_write_are_all_answered_in_order(port: int) -> None:
    socket = await RawSocket.open(port, "pipelined")
    await socket.send(b"".join(frame(chat("pipelined", f"number {n}")) for n in range(5)))
    assert [await socket.reply() for _ in range(5)] == [f"number {n}" for n in range(5)]
    socket.close()


async def test_a_fragmented_message_is_joined_and_a_ping_between_its_pieces_is_answered(
    port: int,
) -> None:
    socket = await RawSocket.open(port, "fragments")
    whole = chat("fragments", "in three pieces")
    await socket.send(
        frame(whole[:10], TEXT, fin=False),
        frame(whole[10:20], CONTINUATION, fin=False),
        frame(b"are you there", PING),
        frame(whole[20:], CONTINUATION),
    )
    assert await socket.frame() == (PONG, b"are you there")
    assert "in three pieces" in await socket.reply()
    socket.close()


async def test_a_message_longer_than_125_bytes_is_answered(port: int) -> None:
    socket = await RawSocket.open(port, "longer")
    content = "hosszú üzenet " * 40
    await socket.send(frame(chat("longer", content)))
    assert content.strip() in await socket.reply()
    socket.close()


async def test_a_frame_announcing_too_much_is_closed_with_1009_before_its_bytes_come(
    port: int, settings: Settings
) -> None:
    socket = await RawSocket.open(port, "huge")
    too_long = settings.max_frame_bytes + 1
    await socket.send(struct.pack("!BBQ", 0x81, 0x80 | 127, too_long) + b"mask")
    opcode, payload = await socket.frame()
    assert opcode == CLOSE
    assert struct.unpack("!H", payload[:2]) == (1009,)
    assert await socket.closed()


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(frame(b"{}", rsv=0x20), id="a reserved bit no extension defines"),
        pytest.param(frame(b"{}", rsv=0x40), id="a compressed frame without compression agreed"),
        pytest.param(frame(b"{}", CONTINUATION), id="a continuation of nothing"),
        pytest.param(frame(b"{}", TEXT, fin=False) + frame(b"{}"), id="a message inside a message"),
        pytest.param(frame(b"x", PING, fin=False), id="a fragmented control frame"),
        pytest.param(frame(b"x" * 126, PING), id="a control frame of 126 bytes"),
        pytest.param(
            struct.pack("!BBQ", 0x89, 0x80 | 127, 60_000) + b"mask",
            id="the header of a ping of 60,000 bytes, its bytes never sent",
        ),
        pytest.param(
            struct.pack("!BBH", 0x89, 0x80 | 126, 5) + b"mask" + b"hello",
            id="a short ping in the 16-bit length form",
        ),
        pytest.param(frame(b"\xff\xfe"), id="text that is not UTF-8"),
        pytest.param(frame(b"{}", 0x3), id="a reserved opcode"),
    ],
)
async def test_frames_that_break_the_protocol_end_the_connection(port: int, wire: bytes) -> None:
    socket = await RawSocket.open(port, "breaker")
    await socket.send(wire)
    assert await socket.closed()


async def test_the_connection_goes_on_after_a_binary_frame(port: int) -> None:
    socket = await RawSocket.open(port, "binary")
    await socket.send(frame(b"\x00\x01", BINARY))
    received = await socket.json()
    assert received["type"] == "error"
    await socket.send(frame(chat("binary", "still here")))
    assert "still here" in await socket.reply()
    socket.close()


async def test_a_fragment_that_would_take_the_message_past_the_limit_is_refused_from_its_header(
    port: int, settings: Settings
) -> None:
    socket = await RawSocket.open(port, "pieces")
    half = settings.max_frame_bytes // 2 + 1
    await socket.send(frame(b"a" * half, TEXT, fin=False))
    await socket.send(struct.pack("!BBH", 0x80, 0x80 | 126, half) + b"mask")
    opcode, payload = await socket.frame()
    assert opcode == CLOSE
    assert struct.unpack("!H", payload[:2]) == (1009,)
    assert await socket.closed()


class TestCompressedMessages:
    @pytest.fixture
    def settings(self) -> Settings:
        return unlimited(agent="echo", compression=True)

    async def test_a_compressed_message_is_answered(self, port: int) -> None:
        socket = await RawSocket.open(port, "deflated", deflate=True)
        await socket.send(frame(deflated(chat("deflated", "squeezed")), rsv=0x40))
        assert "squeezed" in await socket.reply()
        socket.close()

    async def test_a_ping_between_the_pieces_of_a_compressed_message_leaves_it_compressed(
        self, port: int
    ) -> None:
        socket = await RawSocket.open(port, "deflated-pieces", deflate=True)
        data = deflated(chat("deflated-pieces", "around a ping"))
        await socket.send(
            frame(data[:5], TEXT, fin=False, rsv=0x40),
            frame(b"p", PING),
            frame(data[5:], CONTINUATION),
        )
        assert await socket.frame() == (PONG, b"p")
        assert "around a ping" in await socket.reply()
        socket.close()

    async def test_data_that_does_not_inflate_is_closed_with_1007_and_logs_no_error(
        self, port: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        socket = await RawSocket.open(port, "not-deflate", deflate=True)
        await socket.send(frame(b"\xff\xff\xff\xff\xff", TEXT, rsv=0x40))
        opcode, payload = await socket.frame()
        assert opcode == CLOSE
        assert struct.unpack("!H", payload[:2]) == (1007,)
        assert await socket.closed()
        assert not [record for record in caplog.records if record.levelname == "ERROR"]
