"""The coordinator: routes each message to a sub-agent and streams its answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from chatbuddy.agents.answers import SUB_AGENTS
from chatbuddy.agents.base import AgentReply, AgentRequest
from chatbuddy.agents.language import detect_language
from chatbuddy.agents.routing import decide
from chatbuddy.agents.shop import Shop, words

_PIECE_RE = re.compile(r"\S+\s*")


class CoordinatorAgent:
    """The shop assistant: product, order, recommendation, marketing, general."""

    name = "coordinator"
    #: Enough of the conversation to know what it is about.
    history_wanted = 20

    def __init__(self, shop: Shop, *, words_per_chunk: int = 4, chunk_delay: float = 0.0) -> None:
        # The catalogue the sub-agents look things up in.
        self._shop = shop
        # Size of a streamed chunk; a few words reads naturally in the page.
        self._words_per_chunk = words_per_chunk
        # Pause between chunks, to make streaming visible in demos (0: none).
        self._chunk_delay = chunk_delay

    async def respond(self, request: AgentRequest) -> AgentReply:
        tokens = words(request.content)
        language = detect_language(tokens)
        decision = decide(request.content, tokens, self._shop)
        answer = SUB_AGENTS[decision.route](decision, tokens, language, self._shop)
        return AgentReply(
            agent=decision.route.value,
            confidence=round(answer.confidence, 2),
            chunks=self._stream(answer.text),
            metadata={"language": language, **answer.metadata},
        )

    async def _stream(self, text: str) -> AsyncIterator[str]:
        pieces = _PIECE_RE.findall(text)
        step = self._words_per_chunk
        for start in range(0, len(pieces), step):
            if start and self._chunk_delay:
                await asyncio.sleep(self._chunk_delay)
            yield "".join(pieces[start : start + step])
