"""The one mapping from what went wrong to what a client is told.

Every ``error`` frame the chat layer sends comes from :func:`client_error`, so
one failure reads the same wherever it happens, and no internal detail (a
traceback, an agent's text, a backend's address) reaches a client.
"""

from __future__ import annotations

import logging

from chatbuddy.errors import ClientError, ErrorType, SessionNotFound, StorageUnavailable

log = logging.getLogger(__name__)


def client_error(exc: BaseException, *, session_id: str, request_type: str | None) -> ClientError:
    """What to tell the client about ``exc``, raised while answering ``request_type``.

    Unexpected exceptions are logged here (with their traceback, never with the
    client's text) and reported as ``internal_error``.
    """
    if isinstance(exc, ClientError):
        return exc
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
