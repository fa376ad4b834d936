"""A WebSocket load generator that is cheap enough not to be the bottleneck.

Each connection runs a closed loop: send one chat message, wait for its reply,
send the next. It speaks the WebSocket protocol directly on an asyncio
Protocol: every connection's outgoing frame is built (and masked) once, and
incoming frames are only checked for the reply's type, never parsed as JSON.
Used by ``chatbuddy bench`` and by ``benchmarks/run.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import secrets
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: A frame is ChatBuddy's reply when it starts like this (the envelope puts "type" first).
CHAT_RESPONSE = b'{"type":"chat_response",'
ERROR = b'{"type":"error",'
#: ...and this when the server's rate limits refused the message (error_type comes first).
RATE_LIMITED = b'{"type":"error","data":{"error_type":"rate_limited",'


class HandshakeRefused(ConnectionError):
    """The server answered the upgrade, but not with 101, or with a wrong accept key."""


class RateLimited(HandshakeRefused):
    """The server refused new connections for their rate (HTTP 429)."""


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (clients must mask; the key is random per frame built)."""
    mask = secrets.token_bytes(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    repeated = (mask * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        length, "big"
    )
    return header + mask + masked


@dataclass
class Tally:
    """What all connections measured; latencies in seconds."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    #: Only count while this is True (after warm-up, before the end).
    recording: bool = False
    #: Replies received in total, recorded or not (for progress displays).
    replies: int = 0
    #: Messages the server's rate limits refused, recorded or not: a closed loop that
    #: meets them measures the limits, not the server, so the run stops.
    refused: int = 0
    #: The first refusal's error message (it names the limit).
    refusal: str | None = None
    #: Set at the first refusal, to end the run at once.
    refused_once: asyncio.Event = field(default_factory=asyncio.Event)


class _Connection(asyncio.Protocol):
    """One client: handshake, then send-wait-send until told to stop."""

    def __init__(
        self, request: bytes, key: str, frame: bytes | None, tally: Tally, expect: bytes | None
    ) -> None:
        # The HTTP upgrade request, sent on connect.
        self._request = request
        # Its Sec-WebSocket-Key: the server's answer must prove it read it.
        self._key = key
        # The chat message, framed and masked once; None: only hold the connection.
        self._frame = frame
        # Shared results of all connections.
        self._tally = tally
        # Prefix of a reply frame; None: any text frame is the reply (echo servers).
        self._expect = expect
        # Bytes received but not yet parsed.
        self._buffer = bytearray()
        # The socket; set when the TCP connection is made.
        self._transport: asyncio.Transport | None = None
        # Whether the server accepted the upgrade (then the buffer holds frames).
        self._upgraded = False
        # When the message now waiting for its reply was sent (perf_counter).
        self._sent_at = 0.0
        # False once told to stop or closed: no further message is sent.
        self.running = True
        # Resolved when the handshake is done (or failed), and when the connection is gone.
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.running = False
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost during handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded and self.ready.done():
            return  # the run stopped (cancelled) while this handshake was under way
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end])
            status = head[: head.find(b"\r\n")]
            if b" 101 " not in status:
                refused = RateLimited if b" 429 " in status else HandshakeRefused
                self.ready.set_exception(refused(f"handshake refused: {status.decode()}"))
                assert self._transport is not None
                self._transport.close()
                return
            if accept_of(self._key) not in head:  # the server must prove it read our key
                self.ready.set_exception(HandshakeRefused("handshake without the right accept key"))
                assert self._transport is not None
                self._transport.close()
                return
            del self._buffer[: end + 4]
            self._upgraded = True
            self.ready.set_result(None)
        self._frames()

    def start(self) -> None:
        """Send the first message of the loop."""
        self._send()

    def _send(self) -> None:
        if self._frame is None or self._transport is None or not self.running:
            return
        self._sent_at = time.perf_counter()
        self._transport.write(self._frame)

    def _frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, offset = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, offset = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode == 0x1:
                self._text(payload)
            elif opcode == 0x9 and self._transport is not None:  # ping: answer it
                self._transport.write(client_frame(payload, opcode=0xA))
            elif opcode == 0x8:
                self.running = False

    def _text(self, payload: bytes) -> None:
        tally = self._tally
        if self._expect is None or payload.startswith(self._expect):
            tally.replies += 1
            if tally.recording:
                tally.latencies.append(time.perf_counter() - self._sent_at)
            self._send()
        elif payload.startswith(RATE_LIMITED):
            # Sending again at once would only flood the server's refusals (and its
            # error counters): this loop stops, and so does the run.
            tally.refused += 1
            if tally.refusal is None:
                tally.refusal = _error_message(payload)
                tally.refused_once.set()
            self.running = False
        elif payload.startswith(ERROR) and self._sent_at:
            if tally.recording:
                tally.errors += 1
            self._send()

    def close(self) -> None:
        self.running = False
        if self._transport is not None:
            self._transport.close()


async def _until(event: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``event`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _error_message(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["data"]["error_message"])
    except (ValueError, KeyError, TypeError):
        return "rate_limited"


@dataclass(frozen=True)
class LoadResult:
    """One load run: throughput and latency of replies, and errors."""

    connections: int
    seconds: float
    replies: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    #: CPU seconds the generator itself used while recording (to show it was not the limit).
    generator_cpu: float
    #: Messages the server's rate limits refused; the run stopped at the first.
    refused: int = 0
    #: What the first refusal said (which limit).
    refusal: str | None = None

    @property
    def rate(self) -> float:
        return self.replies / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "connections": self.connections,
            "seconds": round(self.seconds, 3),
            "replies": self.replies,
            "errors": self.errors,
            "rate": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "generator_cpu": round(self.generator_cpu, 3),
            "rate_limited": self.refused,
        }


def _percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


#: RFC 6455's GUID, appended to the client's key to make the server's accept value.
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_of(key: str) -> bytes:
    """The Sec-WebSocket-Accept value a server must answer ``key`` with."""
    digest = hashlib.sha1((key + _GUID).encode()).digest()  # noqa: S324 - RFC 6455
    return base64.b64encode(digest)


def _request(host: str, port: int, path: str) -> tuple[bytes, str]:
    """The upgrade request, and the key in it."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    return request, key


class LoadTarget:
    """Where to connect and what to send: a ChatBuddy server or a bare echo server."""

    def __init__(self, url: str, *, chatbuddy: bool = True, message: str = "hello") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "ws") or not parts.hostname:
            raise ValueError(f"expected http://HOST:PORT or ws://HOST:PORT/PATH, got {url!r}")
        # Where the server listens.
        self.host = parts.hostname
        self.port = parts.port or 80
        # A bare echo server's path (ChatBuddy's is per session).
        self.path = parts.path or "/"
        # Whether to speak ChatBuddy's protocol (else: echo, any frame is the reply).
        self.chatbuddy = chatbuddy
        # The chat text every message carries.
        self.message = message
        # Distinguishes this generator's sessions from any other's.
        self._run = secrets.token_hex(3)
        # Numbers sessions, so every connection of every run gets a new one.
        self._sessions = itertools.count()

    def path_and_frame(self) -> tuple[str, bytes]:
        if not self.chatbuddy:
            payload = json.dumps({"type": "chat_message", "content": self.message}).encode()
            return self.path, client_frame(payload)
        session = f"bench-{self._run}-{next(self._sessions)}"
        payload = json.dumps(
            {"type": "chat_message", "session_id": session, "content": self.message},
            separators=(",", ":"),
        ).encode()
        return f"/ws/chat/{session}", client_frame(payload)

    @property
    def expect(self) -> bytes | None:
        return CHAT_RESPONSE if self.chatbuddy else None


async def _open(
    target: LoadTarget, count: int, tally: Tally, *, loop_messages: bool, parallel: int = 200
) -> list[_Connection]:
    """Open ``count`` connections, ``parallel`` handshakes at a time."""
    loop = asyncio.get_running_loop()
    connections: list[_Connection] = []
    semaphore = asyncio.Semaphore(parallel)

    async def one() -> None:
        path, frame = target.path_and_frame()
        request, key = _request(target.host, target.port, path)
        async with semaphore:
            _, protocol = await loop.create_connection(
                lambda: _Connection(
                    request, key, frame if loop_messages else None, tally, target.expect
                ),
                target.host,
                target.port,
            )
            await protocol.ready
        connections.append(protocol)

    await asyncio.gather(*(one() for _ in range(count)))
    return connections


async def run_load(
    target: LoadTarget,
    *,
    connections: int,
    duration: float,
    warmup: float = 1.0,
    on_progress: Callable[[float, int], None] | None = None,
) -> LoadResult:
    """Drive ``connections`` closed loops for ``warmup + duration`` s; measure ``duration``.

    Stops early once the server's rate limits refuse a message (``refused`` says so).
    """
    tally = Tally()
    opened = await _open(target, connections, tally, loop_messages=True)
    try:
        for connection in opened:
            connection.start()
        await _until(tally.refused_once, warmup)
        tally.recording = True
        cpu_start, started = time.process_time(), time.perf_counter()
        end = started + duration
        while not tally.refused_once.is_set() and (now := time.perf_counter()) < end:
            await _until(tally.refused_once, min(0.25, end - now))
            if on_progress is not None:
                on_progress(time.perf_counter() - started, tally.replies)
        tally.recording = False
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_start
    finally:
        for connection in opened:
            connection.close()
    ordered = sorted(tally.latencies)
    return LoadResult(
        connections=connections,
        seconds=seconds,
        replies=len(ordered),
        errors=tally.errors,
        p50_ms=1000 * statistics.median(ordered) if ordered else 0.0,
        p90_ms=1000 * _percentile(ordered, 0.90),
        p99_ms=1000 * _percentile(ordered, 0.99),
        max_ms=1000 * ordered[-1] if ordered else 0.0,
        generator_cpu=cpu,
        refused=tally.refused,
        refusal=tally.refusal,
    )


async def hold_idle(target: LoadTarget, count: int) -> list[_Connection]:
    """Open ``count`` connections that send nothing (for memory per connection)."""
    return await _open(target, count, Tally(), loop_messages=False)
