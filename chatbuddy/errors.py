"""The one exception tree of ChatBuddy.

Everything the server raises on purpose derives from :class:`ChatBuddyError`,
so callers can tell our failures from bugs. The CLI has its own
``click.ClickException`` subclasses in ``cli/errors.py``.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    """The ``error_type`` values of an ``error`` frame (docs/protocol.md)."""

    INVALID_JSON = "invalid_json"
    UNSUPPORTED_FRAME = "unsupported_frame"
    MISSING_TYPE = "missing_type"
    UNKNOWN_TYPE = "unknown_type"
    VALIDATION_ERROR = "validation_error"
    EMPTY_MESSAGE = "empty_message"
    MESSAGE_TOO_LONG = "message_too_long"
    MISSING_SESSION = "missing_session"
    SESSION_MISMATCH = "session_mismatch"
    RATE_LIMITED = "rate_limited"
    DUPLICATE_MESSAGE = "duplicate_message"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    AGENT_ERROR = "agent_error"
    BUSY = "busy"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL_ERROR = "internal_error"


class ChatBuddyError(Exception):
    """Base of every error ChatBuddy raises on purpose."""


class ClientError(ChatBuddyError):
    """A request a chat client got wrong; it becomes one ``error`` frame.

    The connection stays open: the client may send the next message.
    """

    def __init__(
        self,
        error_type: ErrorType,
        message: str,
        *,
        request_type: str | None = None,
        retryable: bool | None = None,
        client_message_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.request_type = request_type
        #: For a failed reply: whether sending the message again may succeed (None: not said).
        self.retryable = retryable
        # The client's id of the chat message refused, so it knows which one.
        self.client_message_id = client_message_id


class AgentFailed(ChatBuddyError):
    """An agent could not answer, for a reason it can name (the model timed out, is
    overloaded, a spend cap is reached). The message is for the customer: it never
    holds what they wrote, a key or a backend's address.
    """

    def __init__(self, message: str, *, reason: str, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        #: A short code for logs, metadata and admins ("timeout", "upstream_429", "busy"...).
        self.reason = reason
        #: Whether sending the same message again may succeed.
        self.retryable = retryable


class AgentBusy(AgentFailed):
    """The agent answers as many messages as it may, and as many wait: try shortly."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="busy", retryable=True)


class HandshakeRejected(ChatBuddyError):
    """A WebSocket upgrade we refuse before any socket is opened."""

    status = 400
    reason = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidIdentifier(HandshakeRejected):
    """A session or user id that does not match the id pattern (HTTP 400)."""

    status = 400
    reason = "invalid_identifier"


class TooManySessions(HandshakeRejected):
    """A client address opened too many new sessions lately (HTTP 429)."""

    status = 429
    reason = "too_many_sessions"


class ServerFull(HandshakeRejected):
    """The server holds as many sessions as it may (HTTP 503)."""

    status = 503
    reason = "server_full"


class SessionAccessDenied(HandshakeRejected):
    """A session exists and the caller did not prove it is theirs (HTTP 403)."""

    status = 403
    reason = "session_access_denied"


class IdentityInvalid(HandshakeRejected):
    """A signed identity (JWT) that does not check out: signature, claims (HTTP 401)."""

    status = 401
    reason = "identity_invalid"


class IdentityExpired(IdentityInvalid):
    """A signed identity whose ``exp`` has passed: fetch a fresh one (HTTP 401)."""

    reason = "identity_expired"


class IdentityRequired(IdentityInvalid):
    """No signed identity where this server needs one (HTTP 401)."""

    reason = "identity_required"


class IdentityUnavailable(HandshakeRejected):
    """The shop's signing keys cannot be fetched right now (HTTP 503)."""

    status = 503
    reason = "identity_unavailable"


class ConnectionClosed(ChatBuddyError):
    """A send to a connection that is already gone."""


class ConfigurationError(ChatBuddyError):
    """Settings that cannot work together (bad agent name, bad duration...)."""


class ShopFileError(ConfigurationError):
    """A shop file that cannot be used; the message is one line naming entry and field."""


class SessionNotFound(ChatBuddyError):
    """The session does not exist (never did, or expired and was swept)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} does not exist or has expired")
        self.session_id = session_id


class SessionReplaced(SessionNotFound):
    """The session id now belongs to another session than the one asked about
    (it expired, or the store lost it, and the id was taken again)."""

    def __init__(self, session_id: str) -> None:
        ChatBuddyError.__init__(self, f"session {session_id!r} was replaced by a new session")
        self.session_id = session_id


class HeldByAnother(ChatBuddyError):
    """An operator action on a conversation another operator holds (HTTP 409)."""

    def __init__(self, session_id: str, operator: str, since: str) -> None:
        super().__init__(f"{operator} holds session {session_id!r} (since {since})")
        self.session_id = session_id
        self.operator = operator


class NotHolding(ChatBuddyError):
    """An operator action that needs the hold, by an operator who does not hold it."""

    def __init__(self, session_id: str, operator: str) -> None:
        super().__init__(f"{operator} does not hold session {session_id!r}; take it over first")
        self.session_id = session_id


class StorageUnavailable(ChatBuddyError):
    """The engine's store (Redis) cannot be reached right now; retry later."""


# -- the client side (chatbuddy.client: the CLI, the tests, the benchmarks) --------


class ClientFailure(ChatBuddyError):
    """Talking to a ChatBuddy server failed; the message says what to do.

    When the server refused a request, ``status`` is its HTTP status and
    ``error_type`` the ``error.type`` of its JSON body.
    """

    def __init__(
        self, message: str, *, status: int | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type


class ServerUnreachable(ClientFailure):
    """Nothing answers at the URL."""

    def __init__(self, url: str) -> None:
        super().__init__(f"cannot connect to {url} — is `chatbuddy serve` running?")
        self.url = url


class AccessRefused(ClientFailure):
    """The server refused the admin token or the session token (HTTP 401/403)."""


class TokenMissing(AccessRefused):
    """No admin token was given, and the local server's token file is not there
    (yet): the server is not running, or is restarting."""


class NotFound(ClientFailure):
    """The server has no such thing (an unknown session)."""


class Disconnected(ClientFailure):
    """The server closed or lost a socket."""


class Conflict(ClientFailure):
    """The server refused an operator action: another operator holds the session."""
