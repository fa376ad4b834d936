"""Every WebSocket close code the server sends, and whether a client should retry.

One table, read by the server, the page (static/protocol.js mirrors it) and
the CLI; docs/protocol.md shows it and a test checks the two agree. A
*terminal* close means reconnecting as before cannot help (the session is
gone, or the client misbehaved): the page stops and says why. A *retry* close
means reconnect with backoff and fetch what was missed with ``history``.
"""

from __future__ import annotations

from enum import IntEnum


class Close(IntEnum):
    """Close codes (RFC 6455 ones, and 4000-4999 of our own)."""

    #: The client closed, or the server closed normally.
    NORMAL = 1000
    #: The server is shutting down or restarting; reconnect (another node may answer).
    GOING_AWAY = 1001
    #: The client broke the rules again and again (rate limits, frame budget).
    POLICY_VIOLATION = 1008
    #: A frame over the size limit (64 KiB).
    TOO_BIG = 1009
    #: An error on the server's side.
    SERVER_ERROR = 1011
    #: The server is over a limit right now; reconnect later.
    TRY_AGAIN_LATER = 1013
    #: The client read too slowly: more than the per-connection queue (1 MiB)
    #: was waiting for it. Reconnect and fetch the rest with ``history``.
    SLOW_CONSUMER = 4000
    #: The session expired (or the store lost it); start a new session.
    SESSION_EXPIRED = 4001
    #: The session id was taken by a new session; start a new session.
    SESSION_REPLACED = 4002
    #: An administrator deleted the session (a data-protection request).
    SESSION_DELETED = 4003
    #: The customer's signed identity (JWT) expired; reconnect with a fresh one
    #: (the page asks the widget's token hook again before every connection).
    IDENTITY_EXPIRED = 4004
    #: The peer answered no ping and read nothing for too long.
    NOT_RESPONDING = 4008


#: Codes after which a client should reconnect (with backoff).
RETRY = frozenset(
    {
        Close.GOING_AWAY,
        Close.TOO_BIG,
        Close.SERVER_ERROR,
        Close.TRY_AGAIN_LATER,
        Close.SLOW_CONSUMER,
        Close.IDENTITY_EXPIRED,
        Close.NOT_RESPONDING,
    }
)


def retry(code: int | None) -> bool:
    """Whether a client should reconnect after ``code`` (None: the connection was lost)."""
    return code is None or code in RETRY or code not in set(Close)
