"""permessage-deflate (RFC 7692) for the chat socket, with its memory bounded.

Off by default (``--compression``): compressing secrets next to text an
attacker chooses can leak them by size (CRIME/BREACH), which is why the OWASP
WebSocket cheat sheet advises against it unless it is needed. When on, the
cost per connection is set by two numbers zlib keeps per stream:

- the compressor, kept for the connection's life when the client allows
  context takeover (browsers do): ``2**(window_bits + 2) + 2**(mem_level + 9)``
  bytes plus about 6 KiB of state;
- the decompressor: a ``2**client_window`` byte window plus about 7 KiB.

Tornado takes the window sizes from the client's offer and cannot limit them
itself, so :meth:`Deflate.accept` rewrites the offer before Tornado reads it:
RFC 7692 lets a server answer with a smaller ``server_max_window_bits`` than
offered (or one not offered), and a smaller ``client_max_window_bits`` when the
client offered that parameter, as browsers do. An offer this server cannot
honour, or does not understand, is declined (the socket then opens
uncompressed) rather than failing the handshake. The greeting, which carries
the session token, is always sent uncompressed (:func:`worth_compressing`).
What a client can still
choose: no context takeover on either side (less memory, worse ratio), and
windows smaller than ours; and a client that does not offer
``client_max_window_bits`` may compress with zlib's largest window (32 KiB),
which this server then needs to read it. A decompressed message is still
limited to the frame limit (Tornado's ``websocket_max_message_size``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: zlib's largest window (32 KiB); RFC 7692 allows 8 to 15.
MAX_WINDOW_BITS = 15
#: zlib's raw deflate cannot compress with an 8-bit window (it needs 9 or more).
MIN_DEFLATE_WINDOW_BITS = 9
#: The extension's own name in ``Sec-WebSocket-Extensions``.
EXTENSION = "permessage-deflate"
#: Parameters without a value.
FLAGS = ("server_no_context_takeover", "client_no_context_takeover")
#: How many extension offers are looked at (a browser sends one or two).
MAX_OFFERS = 4
#: How the greeting, the one frame that carries the session token, starts.
GREETING_START = '{"type":"connection_established"'


def worth_compressing(frame: str) -> bool:
    """Whether to compress ``frame``: not the greeting. It carries the session token,
    and a frame sent uncompressed never enters the compressor's window, so no later
    frame (with text a customer typed) can be compressed against the token and
    betray it by its size (the CRIME/BREACH kind of guess)."""
    return not frame.startswith(GREETING_START)


@dataclass(frozen=True)
class Deflate:
    """How this server compresses: the window and memory level of its compressor."""

    #: The largest window (log2 bytes) either side may use; 11 is 2 KiB, enough for a
    #: reply's chunks and the whole reply after them.
    window_bits: int = 11
    #: zlib's memLevel: the compressor's hash table and buffers (1-9); chat frames
    #: compress as well at 2 as at 8, for 2 KiB of buffers instead of 128.
    mem_level: int = 2
    #: zlib's level (1 fast - 9 small); chat frames are small, so the CPU is too.
    level: int = 6

    def __post_init__(self) -> None:
        if not MIN_DEFLATE_WINDOW_BITS <= self.window_bits <= MAX_WINDOW_BITS:
            raise ValueError(
                f"window_bits must be {MIN_DEFLATE_WINDOW_BITS}-{MAX_WINDOW_BITS}, "
                f"got {self.window_bits}"
            )
        if not 1 <= self.mem_level <= 9:
            raise ValueError(f"mem_level must be 1-9, got {self.mem_level}")
        if not 1 <= self.level <= 9:
            raise ValueError(f"level must be 1-9, got {self.level}")

    @property
    def options(self) -> dict[str, int]:
        """Tornado's ``get_compression_options()``."""
        return {"compression_level": self.level, "mem_level": self.mem_level}

    def compressor_bytes(self, window_bits: int | None = None) -> int:
        """The zlib buffers of one compressor (zlib's deflate.c formula), state aside."""
        bits = self.window_bits if window_bits is None else window_bits
        return (1 << (bits + 2)) + (1 << (self.mem_level + 9))

    def accept(self, header: str | None) -> str | None:
        """The offer to accept from a ``Sec-WebSocket-Extensions`` request header,
        rewritten with this server's limits; None to open the socket uncompressed."""
        if not header:
            return None
        for offer in header.split(",", MAX_OFFERS)[:MAX_OFFERS]:
            params = _parameters(offer)
            if params is not None:
                accepted = self._accept_offer(params)
                if accepted is not None:
                    return accepted
        return None

    def _accept_offer(self, params: dict[str, str | None]) -> str | None:
        for flag in FLAGS:
            if flag in params and params[flag] is not None:
                return None
        server_bits = _bits(params.get("server_max_window_bits", str(MAX_WINDOW_BITS)))
        if server_bits is None or server_bits < MIN_DEFLATE_WINDOW_BITS:
            return None
        answer = [EXTENSION, *(flag for flag in FLAGS if flag in params)]
        answer.append(f"server_max_window_bits={min(server_bits, self.window_bits)}")
        if "client_max_window_bits" in params:
            client_value = params["client_max_window_bits"]
            client_bits = MAX_WINDOW_BITS if client_value is None else _bits(client_value)
            if client_bits is None:
                return None
            answer.append(f"client_max_window_bits={min(client_bits, self.window_bits)}")
        return "; ".join(answer)


def _parameters(offer: str) -> dict[str, str | None] | None:
    """The parameters of one ``permessage-deflate`` offer; None for another
    extension, an unknown or repeated parameter (RFC 7692: decline the offer)."""
    name, *parts = (part.strip() for part in offer.split(";", 5))
    if name.lower() != EXTENSION:
        return None
    params: dict[str, str | None] = {}
    for part in parts:
        key, has_value, value = part.partition("=")
        key = key.strip().lower()
        if key not in (*FLAGS, "server_max_window_bits", "client_max_window_bits"):
            return None
        if key in params:
            return None
        params[key] = value.strip().strip('"') if has_value else None
    return params


def _bits(value: str | None) -> int | None:
    """A window size parameter's value, 8-15; None if it is anything else."""
    if value is None or not value.isdigit() or len(value) > 2:
        return None
    bits = int(value)
    return bits if 8 <= bits <= MAX_WINDOW_BITS else None
