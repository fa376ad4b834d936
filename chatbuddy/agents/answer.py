"""What one sub-agent produces: the text, who answered, how sure, what to remember."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chatbuddy.agents.context import Context


class Route(StrEnum):
    """The sub-agents (``metadata.agent`` of a reply; the page names them)."""

    PRODUCT = "product"
    ORDER = "order"
    RECOMMENDATION = "recommendation"
    MARKETING = "marketing"
    GENERAL = "general"


@dataclass(frozen=True)
class Answer:
    text: str
    route: Route
    #: How well the message was understood: a keyword alone is a guess, a
    #: recognised product or order number is a fact.
    confidence: float
    #: The conversation after this answer.
    context: Context
    #: JSON-safe facts for the reply's metadata (product ids, order number, ...).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Why a person should take over (None: no hand-off).
    handoff: str | None = None
