"""Text frames written to one connection in one event-loop turn leave in one write.

A streamed reply is several frames (chunks, then the whole) produced back to
back; written one by one, each is a ``send()`` system call and a write future,
and those were a third of a streamed reply's CPU (docs/performance.md). Here
the frames of a turn are framed into one buffer and handed to the stream once,
when the turn ends (``call_soon``), so the client also gets them in one TCP
segment. Order is kept: everything goes through the buffer, and
:meth:`TurnWriter.flush` runs before a close frame.

Only uncompressed frames are written here (RFC 6455 §5.2: a server's frames
are not masked, so a frame is two to ten header bytes and the UTF-8 text);
a compressed connection writes each frame through Tornado.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import tornado.iostream

#: FIN + opcode 1 (text).
_TEXT = 0x81


def frame_header(size: int) -> bytes:
    """The header of an unmasked, final text frame carrying ``size`` bytes."""
    if size < 126:
        return bytes((_TEXT, size))
    if size <= 0xFFFF:
        return struct.pack("!BBH", _TEXT, 126, size)
    return struct.pack("!BBQ", _TEXT, 127, size)


class TurnWriter:
    """One connection's frames of this turn, written when the turn ends."""

    __slots__ = ("_loop", "_on_full", "_pending", "_scheduled", "_stream")

    def __init__(self, stream: tornado.iostream.IOStream, on_full: Callable[[], None]) -> None:
        # Where the bytes go.
        self._stream = stream
        # Called when the stream refuses more (its max_write_buffer_size is reached).
        self._on_full = on_full
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

    def add(self, text: str) -> None:
        """Frame ``text``; it is written at the end of this turn."""
        data = text.encode()
        pending = self._pending
        if pending is None:
            pending = self._pending = bytearray()
        pending += frame_header(len(data))
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
        try:
            self._stream.write(memoryview(data))
        except tornado.iostream.StreamClosedError:
            pass  # the peer is gone; the connection's on_close does the rest
        except tornado.iostream.StreamBufferFullError:
            self._on_full()
