"""What a server measures about itself, as calls on a small interface.

The chat core, the handlers, the engines and the agents report what happened
(a message received, a reply sent, a handshake refused...) to an object they
are given; they never know how it is kept. :data:`NO_METRICS` drops
everything (``--no-metrics``, and tests that do not look);
:class:`chatbuddy.metrics.prometheus.PrometheusMetrics` keeps it for
``GET /metrics`` (docs/operations.md lists the metrics).

Each caller asks for the narrow part it uses (:class:`ChatMetrics`,
:class:`SocketMetrics`, :class:`EngineMetrics`, :class:`LlmMetrics`);
:class:`Metrics` is all of them. Calls are on the hot path: an implementation
does a few increments and nothing that waits.
"""

from __future__ import annotations

from typing import Protocol


class ChatMetrics(Protocol):
    """What the chat core reports: messages, replies, errors, limits."""

    def message_received(self, transport: str) -> None:
        """A chat message was accepted for a reply (``transport``: websocket or http)."""

    def reply_sent(self, agent: str, route: str, seconds: float) -> None:
        """A reply was stored and sent, ``seconds`` after its message's turn came;
        ``route`` is the sub-agent that answered."""

    def first_chunk(self, agent: str, seconds: float) -> None:
        """A streamed reply's first chunk went out, ``seconds`` after its message's turn came."""

    def error_sent(self, error_type: str) -> None:
        """A client was told of an error (an ``error`` frame, or an HTTP chat error)."""

    def rate_limited(self, limit: str) -> None:
        """A rate limit refused a frame: ``connection``, ``session``, ``address``,
        ``frames`` (any frame), or ``queue`` (too many messages waiting)."""


class SocketMetrics(Protocol):
    """What the HTTP and WebSocket layer reports."""

    def connection_opened(self) -> None:
        """A chat socket opened."""

    def connection_closed(self, code: int | None, *, by_server: bool) -> None:
        """A chat socket closed with ``code`` (None: no close frame)."""

    def handshake_refused(self, reason: str) -> None:
        """A chat handshake (or an HTTP chat request) was refused admission, for
        ``reason`` (``session_access_denied``, ``origin_not_allowed``...)."""

    def connection_refused(self, reason: str) -> None:
        """A TCP connection was refused as it was accepted (``server_full``,
        ``too_many_connections``)."""

    def write_queued(self, size: int) -> None:
        """``size`` bytes wait to be sent to one chat socket (reported when a write
        could not leave at once)."""


class EngineMetrics(Protocol):
    """What the engine's calls cost (stores and buses outside this process)."""

    def engine_call(self, operation: str, seconds: float, *, failed: bool) -> None:
        """One call of the store or bus (``operation``: its method name) took
        ``seconds``; ``failed``: the backend could not be reached."""


class LlmMetrics(Protocol):
    """What an agent that calls a language model reports, once per model request
    (it finds this object as ``AgentRequest.metrics``)."""

    def llm_request(
        self,
        *,
        model: str,
        outcome: str,
        seconds: float,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        first_token_seconds: float | None = None,
    ) -> None:
        """One request to ``model`` ended with ``outcome`` (``ok``, ``timeout``,
        ``error``, ``cancelled``...) after ``seconds``, using these tokens;
        ``first_token_seconds``: when its first token came, if it streamed."""


class Metrics(ChatMetrics, SocketMetrics, EngineMetrics, LlmMetrics, Protocol):
    """Everything a server measures."""


class NoMetrics:
    """Measures nothing: every call returns at once."""

    def message_received(self, transport: str) -> None:
        pass

    def reply_sent(self, agent: str, route: str, seconds: float) -> None:
        pass

    def first_chunk(self, agent: str, seconds: float) -> None:
        pass

    def error_sent(self, error_type: str) -> None:
        pass

    def rate_limited(self, limit: str) -> None:
        pass

    def connection_opened(self) -> None:
        pass

    def connection_closed(self, code: int | None, *, by_server: bool) -> None:
        pass

    def handshake_refused(self, reason: str) -> None:
        pass

    def connection_refused(self, reason: str) -> None:
        pass

    def write_queued(self, size: int) -> None:
        pass

    def engine_call(self, operation: str, seconds: float, *, failed: bool) -> None:
        pass

    def llm_request(
        self,
        *,
        model: str,
        outcome: str,
        seconds: float,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        first_token_seconds: float | None = None,
    ) -> None:
        pass


#: The metrics of a server that keeps none.
NO_METRICS: Metrics = NoMetrics()

__all__ = [
    "NO_METRICS",
    "ChatMetrics",
    "EngineMetrics",
    "LlmMetrics",
    "Metrics",
    "NoMetrics",
    "SocketMetrics",
]
