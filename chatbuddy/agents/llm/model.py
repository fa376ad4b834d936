"""The model, through the official OpenAI SDK: the only module that imports ``openai``.

Any OpenAI-compatible chat completions endpoint works (OpenAI, Ollama, vLLM,
llama.cpp's server, LM Studio). One request is streamed (``stream=True``) and
read as :data:`Event` values: text deltas, tool call pieces (models send a
call's name and arguments split over many chunks), the token usage, the
finish reason. The SDK parses the server-sent events and retries 429s and
5xxs with backoff (``retries`` times); every failure becomes an
:class:`~chatbuddy.errors.AgentFailed` that says whether a retry may help.
Nothing here logs a request, a header or a key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from chatbuddy.errors import AgentFailed, ConfigurationError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'chatbuddy[llm]'"


def load_sdk() -> Any:
    """The ``openai`` module; ConfigurationError saying how to install it if it is missing."""
    try:
        import openai
    except ImportError:
        raise ConfigurationError(
            f"--agent llm needs the OpenAI SDK, which is not installed: {INSTALL_HINT}"
        ) from None
    return openai


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of tool call ``index``: its id and name come first, its arguments in pieces."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Finished:
    #: "stop", "tool_calls", "length", ...
    reason: str


Event = TextDelta | ToolCallDelta | Usage | Finished


class Model:
    """One OpenAI-compatible endpoint and model."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        max_tokens: int,
        retries: int,
    ) -> None:
        sdk = load_sdk()
        # The SDK's error classes, for telling failures apart.
        self._sdk = sdk
        # The async client; the key goes out only as its "Authorization: Bearer" header.
        # A local model (Ollama, vLLM) may need no key: the SDK wants one anyway.
        # Typed loosely: the SDK's overloads want TypedDicts where we build plain dicts.
        self._client: Any = sdk.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "no-key", max_retries=retries
        )
        # Which model to ask.
        self.name = model
        # Most tokens the model may write per request.
        self._max_tokens = max_tokens

    async def close(self) -> None:
        await self._client.close()

    async def stream(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]],
        *,
        timeout: float,  # noqa: ASYNC109 - the SDK's own per-request timeout, within the caller's
    ) -> AsyncIterator[Event]:
        """One streamed request: its events, then a :class:`Finished`. The HTTP response is
        closed when the iteration ends for any reason (a cancel closes the request)."""
        sdk = self._sdk
        try:
            stream = await self._client.chat.completions.create(
                model=self.name,
                messages=list(messages),
                tools=list(tools) if tools else sdk.omit,
                stream=True,
                stream_options={"include_usage": True},
                max_tokens=self._max_tokens,
                timeout=max(0.001, timeout),
            )
        except sdk.APIError as exc:
            raise self._failure(exc) from None
        finished = False
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    yield Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        yield TextDelta(delta.content)
                    for call in (delta.tool_calls if delta is not None else None) or ():
                        function = call.function
                        yield ToolCallDelta(
                            call.index,
                            call.id,
                            function.name if function is not None else None,
                            (function.arguments if function is not None else None) or "",
                        )
                    if choice.finish_reason:
                        finished = True
                        yield Finished(choice.finish_reason)
        except sdk.APIError as exc:
            raise self._failure(exc) from None
        except AgentFailed:
            raise
        except Exception as exc:  # a stream that is not what the protocol says
            log.warning("the model's stream broke: %s", type(exc).__name__)
            raise broken_stream() from None
        finally:
            await stream.close()
        if not finished:  # the connection ended before the model said it was done
            raise broken_stream()

    def _failure(self, exc: Exception) -> AgentFailed:
        """What an SDK error means for the customer (and for a retry)."""
        sdk = self._sdk
        if isinstance(exc, sdk.APITimeoutError):
            return timed_out()
        if isinstance(exc, sdk.APIConnectionError):
            return AgentFailed(
                "the assistant cannot be reached right now; please try again shortly",
                reason="model_unreachable",
                retryable=True,
            )
        status = getattr(exc, "status_code", None)
        if status == 429:
            return AgentFailed(
                "the assistant is overloaded right now; please try again shortly",
                reason="model_429",
                retryable=True,
            )
        if isinstance(status, int) and status >= 500:
            return AgentFailed(
                "the assistant failed to answer; please try again",
                reason=f"model_{status}",
                retryable=True,
            )
        if isinstance(status, int):
            if status in (401, 403):
                log.warning(
                    "the model refused the API key (HTTP %d): check CHATBUDDY_LLM_API_KEY", status
                )
            return AgentFailed(
                "the assistant is not available right now",
                reason=f"model_{status}",
                retryable=False,
            )
        log.warning("the model's stream broke: %s", type(exc).__name__)
        return broken_stream()


def timed_out() -> AgentFailed:
    return AgentFailed(
        "the assistant took too long to answer; please try again",
        reason="timeout",
        retryable=True,
    )


def broken_stream() -> AgentFailed:
    return AgentFailed(
        "the assistant's answer broke off; please try again",
        reason="model_stream_broken",
        retryable=True,
    )
