"""The agent interface: how a reply is produced.

An agent decides who answers (the sub-agent) and how sure it is, then streams
the text. The chat logic forwards each chunk as it comes and stores the whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatbuddy.metrics import NO_METRICS, LlmMetrics
from chatbuddy.records import StoredMessage


@dataclass(frozen=True)
class AgentRequest:
    """What an agent is asked to answer."""

    session_id: str
    user_id: str | None
    content: str
    #: The session's messages before this one, oldest first: at most the agent's
    #: ``history_wanted`` of them, read from the store as the message is stored.
    history: Sequence[StoredMessage] = ()
    #: The subject of an identity the server verified (a signed token's), or None.
    #: Unlike ``user_id`` (a label anyone can type into a URL) it proves who asks.
    verified_user: str | None = None
    #: Where an agent that calls a language model reports each request (model,
    #: outcome, time, tokens): the server's metrics (docs/operations.md).
    metrics: LlmMetrics = NO_METRICS


@dataclass(frozen=True)
class ToolStarted:
    """Streamed before a tool runs: the customer sees what the assistant is doing
    (a ``reply_status`` frame) while no text comes."""

    #: The tool's name ("order_status", ...).
    tool: str


@dataclass(frozen=True)
class ToolFinished:
    """Streamed after a tool ran: admins see it in ``chatbuddy tail``."""

    tool: str
    #: The arguments it was called with (shown to admins only when they ask).
    arguments: dict[str, Any]
    seconds: float
    #: False when the tool refused or failed (its result says why).
    ok: bool


#: What a reply's stream carries besides text.
Progress = ToolStarted | ToolFinished


@dataclass
class AgentReply:
    """A reply being produced: who answers, how sure, and the text.

    The text comes either as a stream (``chunks``: each is sent to the client
    as it comes) or whole (``text``: nothing to stream, so the client gets the
    finished reply at once, with no chunk frames). A stream may also carry
    :data:`Progress` (a tool starting or finished) between its pieces of text.

    An agent may update ``agent``, ``metadata`` and ``handoff`` while it streams
    (what the model did is known only then); they are read once the stream ends.
    """

    #: The sub-agent that answers (product, order, ... or the agent's own name).
    agent: str
    #: How well the message was understood, 0..1.
    confidence: float
    #: The text, chunk by chunk; iterating it produces the reply.
    chunks: AsyncIterator[str | Progress] | None = None
    #: Or the whole text at once.
    text: str | None = None
    #: JSON-safe extras that go into the reply's metadata.
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Why a person should take over the conversation (e.g. "customer_asked"); the
    #: reply pipeline then raises a ``handoff_requested`` admin event. None: no hand-off.
    handoff: str | None = None

    def __post_init__(self) -> None:
        if (self.chunks is None) == (self.text is None):
            raise ValueError("an AgentReply has either chunks or text")


class Agent(Protocol):
    """Anything that can answer a chat message.

    An agent may also say ``answers_at_once = True``: it thinks without waiting on
    anything slow (no network; echo, the offline assistant), so the connection that
    asked can produce the reply itself instead of handing it to a task of its own
    (cheaper: docs/performance.md). Agents that wait (a remote model) leave it out,
    and the connection stays free to read, e.g. a ``cancel``, meanwhile.
    """

    @property
    def name(self) -> str: ...

    @property
    def history_wanted(self) -> int:
        """How many earlier messages of the session each request should carry (0: none;
        the store then reads none)."""

    async def respond(self, request: AgentRequest) -> AgentReply:
        """Start a reply; raising here or while streaming is an agent error."""
