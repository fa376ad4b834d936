"""The llm agent's settings (docs/llm.md), after the server's in field order."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatbuddy.settings_flags import option
from chatbuddy.settings_server import ServerSettings


@dataclass(frozen=True)
class LlmSettings(ServerSettings):
    """The llm agent's settings (see :class:`chatbuddy.settings.Settings`)."""

    #: -- the llm agent (docs/llm.md) --
    #: An OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM, ...).
    llm_base_url: str = option(
        "https://api.openai.com/v1",
        "The llm agent's OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1 for Ollama. "
        "The key comes from CHATBUDDY_LLM_API_KEY or OPENAI_API_KEY, never from a flag.",
        metavar="URL",
    )
    #: The model the llm agent asks; required with --agent llm.
    llm_model: str | None = option(
        None,
        "The model the llm agent asks, e.g. gpt-4o-mini or llama3.1 (required).",
        metavar="NAME",
    )
    #: One deadline for a whole reply: waiting for a turn, every retry, every tool round.
    llm_timeout: float = option(
        30.0,
        "One deadline for each llm reply, waiting and retries included; past it the "
        "customer gets agent_error (retryable).",
        duration=True,
        shown="30s",
    )
    #: Requests to the model at once, over all sessions of this node.
    llm_max_concurrency: int = option(
        8, "Requests to the model at once, from this server.", low=1, high=10_000
    )
    #: Replies that may wait for a turn; one more is refused with `busy`.
    llm_max_waiting: int = option(
        32,
        "Replies that may wait for a turn with the model; past that a message gets a "
        "`busy` error (0: none wait).",
        low=0,
        high=100_000,
    )
    #: Most tokens the model may write per request.
    llm_max_tokens: int = option(
        800, "Most tokens the model may write in one request.", low=1, high=1_000_000
    )
    #: Tokens one session may spend in all (0: no cap).
    llm_session_tokens: int = option(
        50_000,
        "Model tokens one conversation may use in all; past it, agent_error or the "
        "fallback (0: no cap).",
        low=0,
    )
    #: Tokens this server may spend per UTC day (0: no cap).
    llm_daily_tokens: int = option(
        2_000_000,
        "Model tokens this server may use per day (UTC); past it, agent_error or the "
        "fallback (0: no cap).",
        low=0,
    )
    #: A file with the system prompt instead of the built-in one.
    llm_system_prompt: str | None = option(
        None,
        "A file with your own system prompt ({shop} is replaced by the shop's name; "
        "default: the built-in one, docs/llm.md).",
        metavar="PATH",
    )
    #: Who answers when the model cannot: None (an agent_error), or "coordinator".
    llm_fallback: str | None = option(
        None,
        "When the model cannot answer (timeout, errors, caps, busy), let this agent "
        "answer instead: coordinator (default: none, an agent_error).",
        metavar="coordinator",
    )
    #: The key for the llm API; from the environment only (cli/serve.py), never a flag.
    llm_api_key: str | None = field(default=None, repr=False)
    #: Rounds of tool calls per reply before the reply is given up.
    llm_max_tool_rounds: int = 4
    #: Characters of earlier messages the model sees (the newest fit first).
    llm_history_chars: int = 12_000
    #: Retries of one request to the model (the SDK's, with backoff), within llm_timeout.
    llm_retries: int = 2
