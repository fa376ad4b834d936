"""The llm agent: an OpenAI-compatible model answering through the shop's tools.

A reply is one conversation with the model, streamed: each text delta the
model sends is yielded as it arrives; when the model calls tools, ChatBuddy
runs them (:mod:`chatbuddy.agents.llm.tools`), yields a
:class:`~chatbuddy.agents.base.ToolStarted` (the page shows what the
assistant does) and a :class:`~chatbuddy.agents.base.ToolFinished` (admins see
it), feeds the results back and streams the next round, up to a cap.

The model is read by a task of its own that puts what arrives on a queue;
the reply's stream takes from the queue with the reply's deadline. So one
deadline (``--llm-timeout``) bounds the whole reply, waiting for a turn and
the SDK's retries included, and closing the stream (a cancel) cancels that
task, which closes the HTTP request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatbuddy.agents.base import Agent, AgentReply, AgentRequest, Progress, ToolStarted
from chatbuddy.agents.context import Context
from chatbuddy.agents.llm.limits import DailySpend, Turns, session_tokens
from chatbuddy.agents.llm.model import Finished, Model, TextDelta, ToolCallDelta, Usage, timed_out
from chatbuddy.agents.llm.prompt import conversation
from chatbuddy.agents.llm.tools import ShopTools, tool_schemas
from chatbuddy.agents.shop import Catalogue, OrderBackend
from chatbuddy.agents.understanding import Reader
from chatbuddy.errors import AgentFailed

log = logging.getLogger(__name__)

#: Characters per token, for an estimate when the model reports no usage (or a reply is
#: stopped before it does): about right for English and Hungarian text.
CHARS_PER_TOKEN = 4
#: Confidence of a reply written by the model (the coordinator's are computed).
CONFIDENCE = 0.8


@dataclass(frozen=True)
class LlmOptions:
    """How the llm agent talks to its model and what it may spend."""

    timeout: float
    max_tool_rounds: int = 4
    history_chars: int = 12_000
    #: Tokens one session may use in all, and this server per day (0: no cap).
    session_tokens: int = 0
    daily_tokens: int = 0


@dataclass
class _Turn:
    """What one reply has done so far."""

    tools: ShopTools
    #: Tokens the session had used before this reply.
    before: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Whether the model reported usage for every request of the reply.
    counted: bool = True
    #: Characters sent and received, for an estimate when usage is not reported.
    chars_in: int = 0
    chars_out: int = 0
    #: Whether any text reached the customer (then there is no falling back).
    streamed: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    #: The reply being written (set as soon as it is made; its stream starts later).
    reply: AgentReply | None = None


class LlmAgent:
    """Answers with a model, through the shop's tools; see the module's docstring."""

    name = "llm"
    #: Earlier messages read with each request; the character budget picks the newest.
    history_wanted = 40

    def __init__(
        self,
        catalogue: Catalogue,
        orders: OrderBackend,
        *,
        model: Model,
        system: str,
        options: LlmOptions,
        turns: Turns,
        spend: DailySpend | None = None,
        fallback: Agent | None = None,
    ) -> None:
        # What the shop sells and says; where orders are found.
        self._shop = catalogue
        self._orders = orders
        # The offline assistant's reader, built once: finds products by the customer's words.
        self._reader = Reader(catalogue)
        # The endpoint and model.
        self._model = model
        # The system prompt, filled in with the shop's facts.
        self._system = system
        # Deadline, tool rounds, history budget, caps.
        self._options = options
        # Bounded concurrency and queue in front of the model.
        self._turns = turns
        # Tokens this server used today.
        self._spend = spend if spend is not None else DailySpend()
        # Who answers when the model cannot (None: an agent_error).
        self._fallback = fallback
        # The tools' schemas, generated once.
        self._tools = tool_schemas(catalogue)

    async def close(self) -> None:
        await self._model.close()

    @property
    def waiting(self) -> int:
        """Replies waiting for a turn with the model now."""
        return self._turns.waiting

    async def respond(self, request: AgentRequest) -> AgentReply:
        tools = ShopTools(
            self._shop,
            self._orders,
            self._reader,
            context=Context.from_history(request.history),
            verified_user=request.verified_user,
        )
        turn = _Turn(tools, before=session_tokens(request.history))
        # The stream starts when the pipeline reads it, after turn.reply is set.
        turn.reply = AgentReply(
            agent=self.name, confidence=CONFIDENCE, chunks=self._reply(request, turn)
        )
        return turn.reply

    # -- one reply ------------------------------------------------------------------

    async def _reply(self, request: AgentRequest, turn: _Turn) -> AsyncIterator[str | Progress]:
        deadline = asyncio.get_running_loop().time() + self._options.timeout
        try:
            self._check_caps(turn)
            async with self._turns.turn(deadline):
                async for item in self._converse(request, turn, deadline):
                    yield item
        except AgentFailed as failure:
            if self._fallback is None or turn.streamed:
                raise
            async for piece in self._fall_back(request, turn, failure):
                yield piece
        finally:
            self._settle(turn)

    def _check_caps(self, turn: _Turn) -> None:
        options = self._options
        if options.session_tokens and turn.before >= options.session_tokens:
            raise AgentFailed(
                "this conversation has reached its limit with the assistant; please contact "
                "the shop",
                reason="session_cap",
                retryable=False,
            )
        if options.daily_tokens and self._spend.used() >= options.daily_tokens:
            raise AgentFailed(
                "the assistant has reached its limit for today; please contact the shop",
                reason="daily_cap",
                retryable=False,
            )

    async def _converse(
        self, request: AgentRequest, turn: _Turn, deadline: float
    ) -> AsyncIterator[str | Progress]:
        arrived: asyncio.Queue[str | Progress | BaseException | None] = asyncio.Queue()
        talker = asyncio.create_task(self._talk(request, turn, arrived, deadline))
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        item = await arrived.get()
                except TimeoutError:
                    raise timed_out() from None
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, str):
                    turn.streamed = True
                yield item
        finally:
            talker.cancel()
            # Let it close the HTTP request before the reply is stored (bounded).
            await asyncio.wait([talker], timeout=2.0)

    async def _talk(
        self,
        request: AgentRequest,
        turn: _Turn,
        arrived: asyncio.Queue[str | Progress | BaseException | None],
        deadline: float,
    ) -> None:
        """Talk to the model until it answers without tools; put what arrives on ``arrived``
        (text, progress, then None; or the failure)."""
        loop = asyncio.get_running_loop()
        messages = conversation(
            self._system, request.history, request.content, self._options.history_chars
        )
        try:
            async with asyncio.timeout_at(deadline):
                for round_ in range(self._options.max_tool_rounds + 1):
                    turn.chars_in += sum(len(json.dumps(m, ensure_ascii=False)) for m in messages)
                    text, calls, usage = await self._measured_round(
                        request, messages, turn, arrived, deadline, loop
                    )
                    if usage is None:
                        turn.counted = False
                    else:
                        turn.prompt_tokens += usage.prompt_tokens
                        turn.completion_tokens += usage.completion_tokens
                    if not calls:
                        arrived.put_nowait(None)
                        return
                    if round_ == self._options.max_tool_rounds:
                        raise AgentFailed(
                            "the assistant needed too many steps for this question; please "
                            "ask it another way",
                            reason="tool_rounds",
                            retryable=False,
                        )
                    self._check_caps(turn)
                    await self._run_tools(messages, text, calls, turn, arrived)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            arrived.put_nowait(timed_out())
        except AgentFailed as failure:
            arrived.put_nowait(failure)
        except Exception as exc:  # a bug, or an order backend that failed
            log.warning("the llm agent failed: %s", type(exc).__name__)
            arrived.put_nowait(
                AgentFailed(
                    "the assistant could not answer this message; please try again",
                    reason="internal",
                    retryable=True,
                )
            )

    async def _measured_round(
        self,
        request: AgentRequest,
        messages: Sequence[dict[str, Any]],
        turn: _Turn,
        arrived: asyncio.Queue[str | Progress | BaseException | None],
        deadline: float,
        loop: asyncio.AbstractEventLoop,
    ) -> tuple[str, list[dict[str, str]], Usage | None]:
        """:meth:`_round`, reported to the metrics (GET /metrics: requests by outcome,
        latency, time to the first token, tokens)."""
        started = loop.time()
        first: list[float] = []
        outcome, usage = "error", None
        try:
            text, calls, usage = await self._round(messages, turn, arrived, deadline, loop, first)
            outcome = "ok"
            return text, calls, usage
        except TimeoutError:
            outcome = "timeout"
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            request.metrics.llm_request(
                model=self._model.name,
                outcome=outcome,
                seconds=loop.time() - started,
                prompt_tokens=usage.prompt_tokens if usage is not None else 0,
                completion_tokens=usage.completion_tokens if usage is not None else 0,
                first_token_seconds=first[0] - started if first else None,
            )

    async def _round(
        self,
        messages: Sequence[dict[str, Any]],
        turn: _Turn,
        arrived: asyncio.Queue[str | Progress | BaseException | None],
        deadline: float,
        loop: asyncio.AbstractEventLoop,
        first: list[float],
    ) -> tuple[str, list[dict[str, str]], Usage | None]:
        """One request: stream its text to ``arrived``; its text, tool calls and usage.
        ``first`` gets the loop time of the first token."""
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage: Usage | None = None
        async for event in self._model.stream(
            messages, self._tools, timeout=deadline - loop.time()
        ):
            if not first and isinstance(event, (TextDelta, ToolCallDelta)):
                first.append(loop.time())
            if isinstance(event, TextDelta):
                text.append(event.text)
                turn.chars_out += len(event.text)
                arrived.put_nowait(event.text)
            elif isinstance(event, ToolCallDelta):
                call = calls.setdefault(event.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = event.id or call["id"]
                call["name"] = event.name or call["name"]
                call["arguments"] += event.arguments
                turn.chars_out += len(event.arguments)
            elif isinstance(event, Usage):
                usage = event
            elif isinstance(event, Finished):
                pass
        return "".join(text), [calls[i] for i in sorted(calls)], usage

    async def _run_tools(
        self,
        messages: list[dict[str, Any]],
        text: str,
        calls: list[dict[str, str]],
        turn: _Turn,
        arrived: asyncio.Queue[str | Progress | BaseException | None],
    ) -> None:
        """Run the round's tool calls; their results join ``messages`` for the next round."""
        messages.append(
            {
                "role": "assistant",
                "content": text or None,
                "tool_calls": [
                    {
                        "id": call["id"] or f"call_{n}",
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]},
                    }
                    for n, call in enumerate(calls)
                ],
            }
        )
        for call in calls:
            turn.tools.check(call["name"])  # before the page is told it runs
        for n, call in enumerate(calls):
            arrived.put_nowait(ToolStarted(call["name"]))
            result, finished = await turn.tools.run(call["name"], call["arguments"])
            arrived.put_nowait(finished)
            turn.calls.append(
                {"tool": finished.tool, "ms": round(1000 * finished.seconds, 2), "ok": finished.ok}
            )
            messages.append(
                {"role": "tool", "tool_call_id": call["id"] or f"call_{n}", "content": result}
            )

    async def _fall_back(
        self, request: AgentRequest, turn: _Turn, failure: AgentFailed
    ) -> AsyncIterator[str | Progress]:
        """The offline assistant's answer, marked as such in the reply's metadata."""
        assert self._fallback is not None
        log.info("the llm agent fell back to %s: %s", self._fallback.name, failure.reason)
        answer = await self._fallback.respond(request)
        reply = turn.reply
        assert reply is not None
        reply.agent, reply.confidence, reply.handoff = (
            answer.agent,
            answer.confidence,
            answer.handoff,
        )
        reply.metadata.update(answer.metadata)
        reply.metadata["fallback"] = self._fallback.name
        reply.metadata["fallback_reason"] = failure.reason
        turn.tools.context = Context.from_metadata(answer.metadata.get("context"))
        if answer.text is not None:
            yield answer.text
            return
        assert answer.chunks is not None
        async for piece in answer.chunks:
            yield piece

    def _settle(self, turn: _Turn) -> None:
        """Count the reply's tokens (estimated if the model did not say, or it was
        stopped first) and write what it did into its metadata."""
        reply = turn.reply
        assert reply is not None
        metadata = reply.metadata
        prompt, completion = turn.prompt_tokens, turn.completion_tokens
        estimated = not turn.counted or bool(turn.chars_in and not prompt)
        if estimated:
            prompt = max(prompt, math.ceil(turn.chars_in / CHARS_PER_TOKEN))
            completion = max(completion, math.ceil(turn.chars_out / CHARS_PER_TOKEN))
        used = prompt + completion
        self._spend.add(used)
        if turn.chars_in or used:
            usage: dict[str, Any] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": used,
                "session_total": turn.before + used,
            }
            if estimated:
                usage["estimated"] = True
            metadata["usage"] = usage
            metadata["model"] = self._model.name
        if turn.calls:
            metadata["tools"] = turn.calls
        if "fallback" not in metadata:
            metadata["context"] = turn.tools.context.to_metadata()
            if turn.tools.handoff is not None:
                reply.handoff = turn.tools.handoff
                metadata["handoff_requested"] = True
