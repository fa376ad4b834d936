"""Keep-alive: one timer pings every chat connection and closes the silent ones."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from chatbuddy.chat import frames
from chatbuddy.records import utcnow
from chatbuddy.server import Server
from chatbuddy.web.chat_socket import ChatSocketHandler
from chatbuddy.web.keepalive import TICK, KeepAlive
from tests.conftest import Connect
from tests.helpers import deaf_client, eventually


@dataclass(eq=False)
class Peer:
    last_heard: float
    pings: int = 0
    closed: list[tuple[int | None, str | None]] = field(default_factory=list)

    #: Whether the keep-alive should see it as not reading.
    stuck: bool = False
    #: Whether messages went both ways since the keep-alive's last look.
    talked: bool = False

    def stalled(self) -> bool:
        return self.stuck

    def chatting(self) -> bool:
        return self.talked

    def ping(self, data: bytes = b"") -> None:
        self.pings += 1

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed.append((code, reason))


def test_a_round_pings_the_lively_and_closes_the_silent() -> None:
    keepalive = KeepAlive(interval=30, timeout=75)
    lively, silent = Peer(time.monotonic()), Peer(time.monotonic() - 100)
    keepalive.add(lively)
    keepalive.add(silent)
    assert keepalive.tick() == 1
    assert silent.closed == [(4008, "no answer to pings")]
    assert (lively.pings, lively.closed) == (1, [])
    assert keepalive.tick() == 0  # the closed one is no longer pinged
    assert silent.pings == 0


async def test_a_real_client_answers_the_ping_and_stays(connect: Connect, server: Server) -> None:
    client = await connect("pinged")
    await client.greeting()
    handler = next(iter(server.keepalive))
    before = handler.last_heard
    server.keepalive.tick()
    await eventually(lambda: handler.last_heard > before, "the pong")
    await client.send(type="ping")
    await client.expect("pong")  # still connected


def test_a_round_does_not_ping_a_peer_that_chatted_both_ways_since_the_last() -> None:
    keepalive = KeepAlive(interval=30, timeout=75)
    chatting, idle = Peer(time.monotonic(), talked=True), Peer(time.monotonic())
    keepalive.add(chatting)
    keepalive.add(idle)
    assert keepalive.tick() == 0
    assert (chatting.pings, idle.pings) == (0, 1)


async def test_a_tab_is_pinged_unless_it_chatted_both_ways_since_the_last_round(
    connect: Connect, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await connect("chatty")
    await client.greeting()
    handler = next(iter(server.keepalive))
    assert isinstance(handler, ChatSocketHandler)
    pings: list[bytes] = []
    monkeypatch.setattr(handler, "ping", lambda data=b"": pings.append(data))
    server.keepalive.tick()
    assert len(pings) == 1  # greeted, but the client has said nothing yet
    await client.chat("chatty", "hello")
    server.keepalive.tick()
    assert len(pings) == 1  # a message and its answer: both directions carried bytes
    server.keepalive.tick()
    assert len(pings) == 2  # quiet since: pinged again
    heard = handler.last_heard
    await client.send(type="typing", state="start")  # a frame that gets no answer
    await eventually(lambda: handler.last_heard > heard, "the typing frame")
    server.keepalive.tick()
    assert len(pings) == 3  # only the client spoke: a proxy saw nothing come back


def test_the_timer_spreads_a_round_over_the_interval_in_slices() -> None:
    keepalive = KeepAlive(interval=30, timeout=75)
    peers = [Peer(time.monotonic()) for _ in range(1200)]
    for peer in peers:
        keepalive.add(peer)
    keepalive._slice()  # one tick of the timer: one bucket, not everyone
    assert sum(peer.pings for peer in peers) < len(peers) // 10
    for _ in range(round(30 / TICK) - 1):  # the rest of one interval's ticks
        keepalive._slice()
    assert all(peer.pings == 1 for peer in peers)  # each pinged exactly once per round


def test_a_peer_that_reads_nothing_for_a_round_is_closed_like_a_silent_one() -> None:
    keepalive = KeepAlive(interval=30, timeout=75)
    reading, stuck = Peer(time.monotonic()), Peer(time.monotonic(), stuck=True)
    keepalive.add(reading)
    keepalive.add(stuck)
    assert keepalive.tick() == 1
    assert stuck.closed == [(4008, "no answer to pings")]
    assert reading.closed == []


async def test_frames_still_being_written_this_turn_do_not_make_a_reader_look_deaf(
    connect: Connect, server: Server
) -> None:
    client = await connect("busy")
    await client.greeting()
    handler = next(iter(server.keepalive))
    assert isinstance(handler, ChatSocketHandler)
    for _ in range(3):  # a round lands while a reply is being written, round after round
        handler.send(frames.pong("busy", None, utcnow()))
        assert handler.queued() > 0
        assert server.keepalive.tick() == 0
        await client.expect("pong")
    await client.send(type="ping")
    await client.expect("pong")  # still connected


async def test_a_client_that_sends_but_takes_nothing_is_closed_by_the_next_round(
    port: int, server: Server
) -> None:
    _, writer = await deaf_client(port, "/ws/chat/deaf")
    await eventually(lambda: server.node.connections_in("deaf") == 1, "the deaf tab")
    handler = next(iter(server.keepalive))
    assert isinstance(handler, ChatSocketHandler)
    while handler.queued() < 256 * 1024:  # more than the sockets between us can hold
        handler.send('{"type":"pong","pad":"' + "x" * 16384 + '"}')
        await asyncio.sleep(0)  # the turn ends: the frames go to the socket
    assert server.keepalive.tick() == 0  # it may still be reading: look again next round
    assert server.keepalive.tick() == 1  # it took nothing since
    assert handler.ws_connection is None  # closed: Tornado let go of the protocol
    # Tornado waits 5 s for the close frame's answer before it drops the socket; a real
    # deaf client is usually gone by then.
    writer.close()
    await eventually(lambda: server.node.connections_in("deaf") == 0, "the deaf tab closed")
