"""The coordinator: the shop assistant that every install has (no LLM, no network).

It reads the message against the shop's vocabulary, takes the conversation
so far from the last reply in the stored history, lets the planner choose the
answer, and streams it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from chatbuddy.agents.base import AgentReply, AgentRequest
from chatbuddy.agents.context import Context
from chatbuddy.agents.planner import Planner
from chatbuddy.agents.shop import Catalogue, FileOrders, OrderBackend

#: A word and the plain spaces after it: a narrow no-break space ("349 990 Ft") never
#: ends a piece, so a price is never split across chunks.
_PIECE_RE = re.compile(r"[^ \t\n]+[ \t\n]*")
#: Words in the first streamed chunk; each later chunk has twice the words of the one
#: before, up to MAX_WORDS_PER_CHUNK. Every chunk is a frame (a socket write) to every
#: tab of the session: a one-line answer arrives in two visible pieces, a long list in a
#: few frames, not dozens (measured: docs/assistant.md, "Speed").
WORDS_PER_CHUNK = 4
MAX_WORDS_PER_CHUNK = 32


class CoordinatorAgent:
    """The shop assistant: product, order, recommendation, marketing, general."""

    name = "coordinator"
    #: The last reply carries the conversation's context; it is the message before
    #: this one unless a reply failed, and a few more cover that.
    history_wanted = 4

    def __init__(
        self,
        shop: Catalogue,
        orders: OrderBackend | None = None,
        *,
        words_per_chunk: int = WORDS_PER_CHUNK,
        chunk_delay: float = 0.0,
    ) -> None:
        if orders is None:
            orders = FileOrders(getattr(shop, "orders", ()))
        # Reads messages and chooses answers; builds the shop's indexes once, here.
        self._planner = Planner(shop, orders)
        # Size of a streamed chunk.
        self._words_per_chunk = words_per_chunk
        # Pause between chunks, to make streaming visible in demos (0: none).
        self._chunk_delay = chunk_delay
        # Nothing to wait for (see Agent) unless orders come from a shop's own backend
        # (it may ask a remote service) or chunks are paced.
        self.answers_at_once = bool(getattr(orders, "answers_at_once", False)) and not chunk_delay

    async def respond(self, request: AgentRequest) -> AgentReply:
        context = Context.from_history(request.history)
        reading = self._planner.reader.read(request.content)
        answer = await self._planner.answer(reading, context, request.verified_user)
        metadata = {
            "language": answer.context.language,
            **answer.metadata,
            "context": answer.context.to_metadata(),
        }
        if answer.handoff is not None:
            metadata["handoff_requested"] = True
        return AgentReply(
            agent=answer.route.value,
            confidence=round(answer.confidence, 2),
            chunks=self._stream(answer.text),
            metadata=metadata,
            handoff=answer.handoff,
        )

    async def _stream(self, text: str) -> AsyncIterator[str]:
        pieces = _PIECE_RE.findall(text)
        step, start = self._words_per_chunk, 0
        while start < len(pieces):
            if start and self._chunk_delay:
                await asyncio.sleep(self._chunk_delay)
            yield "".join(pieces[start : start + step])
            start += step
            step = min(step * 2, max(MAX_WORDS_PER_CHUNK, self._words_per_chunk))
