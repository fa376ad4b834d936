"""The one mapping from what went wrong to what a client is told.

Every ``error`` frame the chat layer sends comes from :func:`client_error`, so
one failure reads the same wherever it happens, and no internal detail (a
traceback, an agent's text, a backend's address) reaches a client.
"""

from __future__ import annotations

import logging

from chatbuddy.errors import (
    ClientError,
    ErrorType,
    SessionNotFound,
    SessionReplaced,
    StorageUnavailable,
)
from chatbuddy.wire.close_codes import Close

log = logging.getLogger(__name__)


def client_error(exc: BaseException, *, session_id: str, request_type: str | None) -> ClientError:
    """What to tell the client about ``exc``, raised while answering ``request_type``.

    Unexpected exceptions are logged here (with their traceback, never with the
    client's text) and reported as ``internal_error``.
    """
    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, SessionReplaced):
        return ClientError(
            ErrorType.MISSING_SESSION,
            f"session {session_id!r} has ended and its id now belongs to a new session; "
            "open a new one",
            request_type=request_type,
        )
    if isinstance(exc, SessionNotFound):
        return ClientError(
            ErrorType.MISSING_SESSION,
            f"session {session_id!r} has expired; open a new one",
            request_type=request_type,
        )
    if isinstance(exc, StorageUnavailable):
        advice = (
            "the message may not have been stored; resend it with the same client_message_id"
            if request_type == "chat_message"
            else "try again shortly"
        )
        return ClientError(
            ErrorType.STORAGE_UNAVAILABLE,
            f"storage is unavailable; {advice}",
            request_type=request_type,
        )
    log.error(
        "internal error on a %s frame in session %s",
        request_type or "unparsed",
        session_id,
        exc_info=exc,
    )
    return ClientError(
        ErrorType.INTERNAL_ERROR,
        "internal error; the connection is still open, please retry",
        request_type=request_type,
    )


def session_gone(exc: SessionNotFound) -> tuple[int, str]:
    """The close code and reason for a connection whose session is gone: expired
    (4001), or its id taken by a new session (4002). Both are terminal."""
    if isinstance(exc, SessionReplaced):
        return Close.SESSION_REPLACED, "session replaced"
    return Close.SESSION_EXPIRED, "session expired"
