"""Frames a connection is sent in one event-loop turn leave together, in order, intact."""

from __future__ import annotations

import asyncio

from chatbuddy.chat import frames
from chatbuddy.records import utcnow
from chatbuddy.server import Server
from chatbuddy.web.chat_socket import ChatSocketHandler
from chatbuddy.web.frame_writer import frame_header
from tests.conftest import Connect
from tests.helpers import deaf_client, eventually
from tests.test_frame_reader import RawSocket


def test_a_header_takes_the_shortest_length_form_the_size_allows() -> None:
    assert frame_header(125) == bytes((0x81, 125))
    assert frame_header(126) == bytes((0x81, 126, 0, 126))
    assert frame_header(65535) == bytes((0x81, 126, 0xFF, 0xFF))
    assert frame_header(65536) == bytes((0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0))


async def test_frames_of_one_turn_arrive_in_order_whatever_their_size(
    connect: Connect, server: Server
) -> None:
    client = await connect("sizes")
    await client.greeting()
    (handler,) = server.node.connections()
    assert isinstance(handler, ChatSocketHandler)
    marks = ["a" * 10, "b" * 300, "c" * 70_000, "d"]  # each length form of RFC 6455
    for mark in marks:
        handler.send(frames.pong("sizes", mark, utcnow()))
    for mark in marks:
        assert (await client.expect("pong"))["data"]["client_timestamp"] == mark


async def test_what_was_sent_before_a_close_arrives_before_it(
    connect: Connect, server: Server
) -> None:
    client = await connect("closing")
    await client.greeting()
    (handler,) = server.node.connections()
    handler.send(frames.pong("closing", "last words", utcnow()))
    handler.close(4009, "test")
    assert (await client.expect("pong"))["data"]["client_timestamp"] == "last words"
    assert await client.closed() == 4009


async def test_frames_the_socket_cannot_take_at_once_follow_in_order(
    port: int, server: Server
) -> None:
    # A client that stops reading: once its socket is full, the rest of a flush waits
    # in the stream, and the next turns' frames queue behind it, not past it.
    reader, writer = await deaf_client(port, "/ws/chat/bulky")
    await eventually(lambda: any(True for _ in server.node.connections()), "the connection")
    (handler,) = server.node.connections()
    assert isinstance(handler, ChatSocketHandler)
    marks: list[str] = []
    behind = 0  # frames sent once bytes were waiting in the stream
    while behind < 3:
        assert len(marks) < 200, "the socket never filled up"
        if handler.queued():
            behind += 1
        marks.append(f"{len(marks)}:" + "x" * 100_000)
        handler.send(frames.pong("bulky", marks[-1], utcnow()))
        await asyncio.sleep(0)  # the turn ends: its frames are flushed
    client = RawSocket(reader, writer)
    assert (await client.json())["type"] == "connection_established"
    for mark in marks:
        assert await client_timestamp(client) == mark
    client.close()


async def test_a_keepalive_ping_leaves_with_the_turns_frames_in_order(
    port: int, server: Server
) -> None:
    client = await RawSocket.open(port, "pinged")
    (handler,) = server.node.connections()
    assert isinstance(handler, ChatSocketHandler)
    handler.send(frames.pong("pinged", "before", utcnow()))
    handler.ping(b"are you there")
    handler.send(frames.pong("pinged", "after", utcnow()))
    assert await client_timestamp(client) == "before"
    assert await client.frame() == (9, b"are you there")  # opcode 9: a ping
    assert await client_timestamp(client) == "after"
    client.close()


async def client_timestamp(client: RawSocket) -> object:
    """The ``client_timestamp`` of the next frame, a pong."""
    pong = await client.json()
    data = pong["data"]
    assert isinstance(data, dict)
    return data["client_timestamp"]
