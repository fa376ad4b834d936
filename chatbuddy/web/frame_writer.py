"""Text frames written to one connection in one event-loop turn leave in one write.

A streamed reply is several frames (chunks, then the whole) produced back to
back; written one by one, each is a ``send()`` system call and a write future,
and those were a third of a streamed reply's CPU (docs/performance.md). Here
the frames of a turn are framed into one buffer and handed to the stream once,
when the turn ends (``call_soon``), so the client also gets them in one TCP
segment. Order is kept: everything goes through the buffer, and
:meth:`TurnWriter.flush` runs before a close frame.

The flush sends to the socket itself when no bytes of earlier writes wait in the
stream (nearly always): Tornado's write wraps the same ``send`` in a future, a
buffer and half a dozen calls. What the socket does not take at once goes to the
stream, which sends it when the socket can take more, after nothing else.

A server's frames are not masked (RFC 6455 §5.2), so a frame is two to ten
header bytes and the UTF-8 text; on a connection that agreed permessage-deflate
(RFC 7692), the text compressed by Tornado's compressor for the connection, with
RSV1 set, unless the caller says a frame goes uncompressed.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import tornado.iostream

#: FIN + opcode 1 (text).
_TEXT = 0x81
#: FIN + opcode 9 (ping).
_PING = 0x89
#: The header bit of a compressed message (RFC 7692 §6).
RSV1 = 0x40


def frame_header(size: int, *, compressed: bool = False) -> bytes:
    """The header of an unmasked, final text frame carrying ``size`` bytes."""
    first = _TEXT | RSV1 if compressed else _TEXT
    if size < 126:
        return bytes((first, size))
    if size <= 0xFFFF:
        return struct.pack("!BBH", first, 126, size)
    return struct.pack("!BBQ", first, 127, size)


class TurnWriter:
    """One connection's frames of this turn, written when the turn ends."""

    __slots__ = (
        "_compress",
        "_loop",
        "_on_full",
        "_on_waiting",
        "_pending",
        "_scheduled",
        "_stream",
    )

    def __init__(
        self,
        stream: tornado.iostream.IOStream,
        on_full: Callable[[], None],
        on_waiting: Callable[[], None] | None = None,
        *,
        compress: Callable[[bytes], bytes] | None = None,
    ) -> None:
        # Where the bytes go.
        self._stream = stream
        # Called when the stream refuses more (its max_write_buffer_size is reached).
        self._on_full = on_full
        # The connection's permessage-deflate compressor (None: not agreed); it keeps
        # context between frames, so frames are compressed in the order they are sent.
        self._compress = compress
        # Called when a write leaves bytes waiting for the client (the socket did not
        # take them all at once): the connection reports how many to its metrics.
        self._on_waiting = on_waiting
        # Framed bytes not yet handed to the stream (None: none; most of a connection's
        # life, so an idle connection holds no buffer).
        self._pending: bytearray | None = None
        # Whether a flush is scheduled for the end of this turn.
        self._scheduled = False
        self._loop = asyncio.get_running_loop()

    @property
    def pending(self) -> int:
        """Bytes framed and not yet handed to the stream."""
        return 0 if self._pending is None else len(self._pending)

    def add(self, text: str, *, compressed: bool = True) -> None:
        """Frame ``text`` (compressed if the connection agreed to it, unless
        ``compressed`` is False); it is written at the end of this turn."""
        data = text.encode()
        if compressed and self._compress is not None:
            data = self._compress(data)
            self._queue(frame_header(len(data), compressed=True), data)
        else:
            self._queue(frame_header(len(data)), data)

    def add_ping(self, data: bytes = b"") -> None:
        """A ping frame (RFC 6455 §5.5.2: at most 125 bytes), written at the end of this
        turn between whole messages."""
        if len(data) > 125:
            raise ValueError("a ping carries at most 125 bytes")
        self._queue(bytes((_PING, len(data))), data)

    def _queue(self, header: bytes, data: bytes) -> None:
        """A framed frame to write at the end of this turn."""
        pending = self._pending
        if pending is None:
            pending = self._pending = bytearray()
        pending += header
        pending += data
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand what is pending to the stream now (before a close frame; at turn's end)."""
        self._scheduled = False
        data = self._pending
        if data is None:
            return
        # The stream may keep a view of the buffer it is given: hand it over, start anew.
        self._pending = None
        sent = _sent_now(self._stream, data)
        if sent == len(data):
            return
        try:
            written = self._stream.write(memoryview(data)[sent:])
        except tornado.iostream.StreamClosedError:
            return  # the peer is gone; the connection's on_close does the rest
        except tornado.iostream.StreamBufferFullError:
            self._on_full()
            return
        if not written.done() and self._on_waiting is not None:
            self._on_waiting()


def _sent_now(stream: tornado.iostream.IOStream, data: bytearray) -> int:
    """How much of ``data`` the socket took at once, sent to it directly when nothing
    waits before it: Tornado's write costs a future and half a dozen calls more, and
    nearly always the socket takes it all. 0 when the stream must do it (bytes of
    earlier writes wait, TLS, a closed stream, an error the stream then reports)."""
    socket = stream.socket
    if type(stream) is not tornado.iostream.IOStream or socket is None or len(stream._write_buffer):
        return 0
    try:
        return socket.send(data)
    except OSError:  # the socket is full (BlockingIOError), or an error
        return 0
