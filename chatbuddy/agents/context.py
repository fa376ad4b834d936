"""What a conversation is about, carried from reply to reply in the stored history.

Each reply's metadata holds the conversation's :class:`Context` under
``"context"``; the next request reads it from ``AgentRequest.history`` (the
latest assistant message that has one). So the memory lives in the session's
stored history: it survives restarts and works on any node, and costs no
re-reading of earlier messages. Only the assistant writes these metadata, so
a customer cannot forge them; they hold no e-mail address or postcode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from chatbuddy.agents.shopfile import LANGUAGES, Language
from chatbuddy.records import StoredMessage


@dataclass(frozen=True, slots=True)
class Context:
    """The conversation so far, as far as the next answer needs it."""

    #: The conversation's language: kept when a message does not show one.
    language: Language | None = None
    #: The product last talked about (id), its category, a brand asked about.
    product: str | None = None
    category: str | None = None
    brand: str | None = None
    #: The order number last asked about.
    order: str | None = None
    #: What the last reply asked for: "order_number", "proof" or "choice".
    awaiting: str | None = None
    #: The products offered in a "which one?" question (ids).
    choices: tuple[str, ...] = ()
    #: What the last reply was about: a route or "policy:<topic>".
    topic: str | None = None
    #: Wrong ownership proofs in this session (see chatbuddy.agents.ownership).
    wrong_proofs: int = 0
    #: Order numbers this session proved it owns.
    owned: tuple[str, ...] = ()

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe, without empty fields."""
        values = ((name, getattr(self, name)) for name in _FIELDS)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values if v}

    def but(self, **changes: Any) -> Context:
        """A copy with ``changes`` (cheaper than dataclasses.replace, which runs per reply)."""
        values = {name: getattr(self, name) for name in _FIELDS}
        values.update(changes)
        return Context(**values)

    @classmethod
    def from_metadata(cls, data: object) -> Context:
        """The context a reply stored; an empty one for anything unexpected."""
        if not isinstance(data, dict):
            return cls()
        language = data.get("language")
        return cls(
            language=language if language in LANGUAGES else None,
            product=_text(data.get("product")),
            category=_text(data.get("category")),
            brand=_text(data.get("brand")),
            order=_text(data.get("order")),
            awaiting=_text(data.get("awaiting")),
            choices=_texts(data.get("choices")),
            topic=_text(data.get("topic")),
            wrong_proofs=_count(data.get("wrong_proofs")),
            owned=_texts(data.get("owned")),
        )

    @classmethod
    def from_history(cls, history: Sequence[StoredMessage]) -> Context:
        """The context of the latest reply in ``history`` (oldest first) that has one."""
        for message in reversed(history):
            if message.role == "assistant" and message.metadata and "context" in message.metadata:
                return cls.from_metadata(message.metadata["context"])
        return cls()


_FIELDS = tuple(f.name for f in fields(Context))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
