"""WebSocket close codes the server sends, and whether a client should reconnect.

docs/protocol.md has the same table ("Close codes"); a test checks that every
code here is there.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """A close code of the chat socket."""

    #: The server is stopping (or found the peer silent): reconnect with backoff.
    GOING_AWAY = 1001
    #: A frame over the size limit: reconnect, and do not send it again.
    MESSAGE_TOO_BIG = 1009
    #: The session was erased on an operator's request (data protection): do not
    #: reconnect to it; forget its id and token and start a new session.
    SESSION_ERASED = 4410

    @property
    def terminal(self) -> bool:
        """Whether reconnecting to the same session is pointless."""
        return self is CloseCode.SESSION_ERASED
