"""A connection's frames read in one read each, and its handler's coroutine run in place.

Tornado reads a client's frame in three awaited reads (header, mask, payload)
and runs a handler's coroutine in a task of its own, with a future and two
callbacks around it. Counted by callgrind on a bare Tornado echo whose
``on_message`` is a coroutine: 293k instructions per message that way, 195k
this way. :class:`ChatProtocol` is Tornado's protocol with another way in: it
takes what the socket has in one read, parses the complete frames in it
(:func:`parse_frame`), calls ``on_message`` and awaits what it returns where it
is. A chat message then cost ChatBuddy 484k instructions instead of 545k; 507k
at the commit that added the second turn below and the red-team's fixes
(``python -m benchmarks.instructions``, docs/performance.md).

After each message it lets the event loop run two turns before it reads again:
the reply is written at the end of the first (frame_writer.py), and the second
gives the client time to send its next frame, so the next read mostly finds it
there instead of failing and waiting on epoll. Measured at 50 connections
(memory + echo): reading after one turn made 2.2 reads per message, after two
1.15; reading at once cost 10 % more CPU per reply; writing the reply at once
instead of with the turn's other writes more than doubled the kernel's time per
reply (each write woke the client on its own).

That read goes to the socket itself (``recv``) when Tornado's stream has nothing
buffered and no read of its own going: Tornado's read costs a future and half a
dozen calls around the same ``recv``. Only when the socket has nothing yet (1 %
of the reads at 50 connections), or the stream must see what happens (the end
of the stream, an error, TLS), does the stream read, and wait, as before. With
the writer's direct send, a chat message costs 431k instructions instead of 513k.

What it does not take itself goes to Tornado's handling: control frames (ping,
pong, close) and compressed messages. The rules are Tornado's (RFC 6455), checked
as soon as a header is there: control frames are final and under 126 bytes (or
the connection ends), a continuation continues something, unknown reserved bits
end the connection, a message over ``max_message_size`` (one frame, or a
fragment that would take the pieces past it) is closed with 1009 before its
bytes are read. Two things Tornado does not: a ping between the pieces of a
compressed message leaves the message compressed, and data that does not inflate
is closed with 1007 instead of a traceback in the log.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import zlib
from typing import NamedTuple

import tornado.iostream
import tornado.websocket

#: At most this much is taken from the stream's buffer at a time.
READ_SIZE = 64 * 1024

_FIN = 0x80
_RSV1 = 0x40
_RSV_MASK = 0x70
_OPCODE = 0x0F
_CONTINUATION = 0x0
_TEXT = 0x1
_BINARY = 0x2
_CONTROL = 0x8


class Frame(NamedTuple):
    """One frame as the client sent it, unmasked."""

    fin: bool
    #: The reserved bits (RSV1: a compressed message).
    rsv: int
    opcode: int
    payload: bytes


class FrameTooLarge(Exception):
    """A frame's header announces more than the connection accepts."""


class BrokenFrame(Exception):
    """A frame's header breaks RFC 6455: a control frame of 126 bytes or more."""


def apply_mask(mask: bytes, data: bytes) -> bytes:
    """``data`` XOR the 4-byte ``mask`` repeated (RFC 6455 §5.3): masks and unmasks."""
    size = len(data)
    if not size:
        return b""
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def parse_frame(buffer: bytes | bytearray, start: int, limit: int) -> tuple[Frame, int] | None:
    """The frame at ``buffer[start:]`` and where the next one starts, or None while
    it is incomplete. As soon as its header is there, raises FrameTooLarge when a data
    frame says more than ``limit`` bytes, BrokenFrame when a control frame says 126 or
    more (whose bytes are then never waited for)."""
    available = len(buffer) - start
    if available < 2:
        return None
    first, second = buffer[start], buffer[start + 1]
    size = second & 0x7F
    if first & _CONTROL and size >= 126:
        raise BrokenFrame(first & _OPCODE)
    at = start + 2
    if size == 126:
        if available < 4:
            return None
        (size,) = struct.unpack_from("!H", buffer, at)
        at += 2
    elif size == 127:
        if available < 10:
            return None
        (size,) = struct.unpack_from("!Q", buffer, at)
        at += 8
    if size > limit and not first & _CONTROL:
        raise FrameTooLarge(size)
    masked = second & 0x80
    end = at + (4 if masked else 0) + size
    if len(buffer) < end:
        return None
    if masked:
        payload = apply_mask(bytes(buffer[at : at + 4]), bytes(buffer[at + 4 : end]))
    else:
        payload = bytes(buffer[at:end])
    return Frame(bool(first & _FIN), first & _RSV_MASK, first & _OPCODE, payload), end


class ChatProtocol(tornado.websocket.WebSocketProtocol13):
    """Tornado's RFC 6455 protocol, reading frames as the module says."""

    #: Bytes read and not parsed yet (the start of a frame). A class default: an idle
    #: connection holds no attribute for it (a fragmented message uses Tornado's own).
    _unread: bytearray | None = None

    async def _receive_frame(self) -> None:  # Tornado's loop calls it until the end
        try:
            frame = await self._read_frame()
        except FrameTooLarge:
            self.close(1009, "message too big")
            self._abort()
            return
        except BrokenFrame:
            self._abort()
            return
        await self._take(frame)

    async def _read_frame(self) -> Frame:
        """The next frame, reading as much as it needs."""
        # What a data frame may still carry: less the pieces of a fragmented message.
        pieces = self._fragmented_message_buffer
        limit = self.params.max_message_size - (len(pieces) if pieces is not None else 0)
        unread = self._unread
        while True:
            if unread:
                parsed = parse_frame(unread, 0, limit)
                if parsed is not None:
                    frame, end = parsed
                    del unread[:end]
                    self._unread = unread or None
                    self._wire_bytes_in += end
                    return frame
            chunk = self._received()
            if chunk is None:
                assert self.stream is not None
                chunk = await self.stream.read_bytes(READ_SIZE, partial=True)
            if unread:
                unread += chunk
                continue
            parsed = parse_frame(chunk, 0, limit)  # the usual case: a whole frame
            if parsed is None:
                unread = self._unread = bytearray(chunk)
                continue
            frame, end = parsed
            self._wire_bytes_in += end
            if end < len(chunk):  # the start of the next ones
                self._unread = bytearray(memoryview(chunk)[end:])
            return frame

    def _received(self) -> bytes | None:
        """What the socket holds now, read from it directly: Tornado's read costs a
        future and half a dozen calls more. None when there is nothing yet (or the
        stream must see it: the end of the stream, an error, TLS, bytes Tornado's own
        buffer holds); then the stream reads and waits, as usual."""
        stream = self.stream
        if (
            type(stream) is not tornado.iostream.IOStream
            or stream.socket is None
            or stream._read_buffer_size
            or stream._read_future is not None
        ):
            return None
        try:
            return stream.socket.recv(READ_SIZE) or None
        except OSError:  # nothing yet (BlockingIOError), or an error the stream reports
            return None

    async def _take(self, frame: Frame) -> None:
        """Act on one frame, as Tornado would, the common case without its detours."""
        fin, rsv, opcode, payload = frame
        compressed = bool(rsv & _RSV1) and self._decompressor is not None
        if rsv & ~(_RSV1 if compressed else 0):  # an extension we did not agree to
            self._abort()
            return
        if opcode & _CONTROL:
            if not fin or compressed:
                self._abort()
                return
            # Between the pieces of a compressed message: its flag is kept for its end.
            message_compressed, self._frame_compressed = self._frame_compressed, False
            await self._tornado_handles(opcode, payload)
            self._frame_compressed = message_compressed
            return
        if opcode == _CONTINUATION:
            pieces = self._fragmented_message_buffer
            if pieces is None or rsv:
                self._abort()
                return
            if len(pieces) + len(payload) > self.params.max_message_size:
                self.close(1009, "message too big")
                self._abort()
                return
            pieces += payload
            if not fin:
                return
            opcode, payload = self._fragmented_message_opcode or 0, bytes(pieces)
            compressed = bool(self._frame_compressed)
            self._fragmented_message_buffer = None
        elif self._fragmented_message_buffer is not None:  # a new message before the end
            self._abort()
            return
        elif not fin:
            self._fragmented_message_buffer = bytearray(payload)
            self._fragmented_message_opcode = opcode  # type: ignore[assignment]
            self._frame_compressed = compressed
            return
        if compressed:
            self._frame_compressed = True
            await self._tornado_handles(opcode, payload)
        else:
            await self._deliver(opcode, payload)

    async def _tornado_handles(self, opcode: int, payload: bytes) -> None:
        try:
            handled = self._handle_message(opcode, payload)
        except zlib.error:  # not deflate data: the client's fault, not a server error
            self.close(1007, "invalid compressed data")
            self._abort()
            return
        if handled is not None:
            await handled

    async def _deliver(self, opcode: int, payload: bytes) -> None:
        """A whole, uncompressed message to ``on_message``; its coroutine awaited here."""
        if self.client_terminated:
            return
        if opcode == _TEXT:
            try:
                message: str | bytes = payload.decode()
            except UnicodeDecodeError:
                self._abort()
                return
        elif opcode == _BINARY:
            message = payload
        else:  # opcodes 3-7 are reserved
            self._abort()
            return
        self._message_bytes_in += len(payload)
        handler = self.handler
        try:
            result = handler.on_message(message)
            if result is not None:
                await result
        except (Exception, asyncio.CancelledError):
            handler.log_exception(*sys.exc_info())
            self._abort()
            return
        # Two turns before the next read: the reply is written at the end of the first,
        # and the second gives the client time to send its next frame.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
