"""The llm agent: any OpenAI-compatible model, streamed, answering through the shop's tools.

``chatbuddy serve --agent llm --llm-model NAME`` (docs/llm.md). Needs the
``llm`` extra (the official OpenAI SDK): ``pip install 'chatbuddy[llm]'``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from chatbuddy.agents.base import Agent
from chatbuddy.agents.coordinator import CoordinatorAgent
from chatbuddy.agents.llm.agent import LlmAgent, LlmOptions
from chatbuddy.agents.llm.limits import DailySpend, Turns
from chatbuddy.agents.llm.model import Model
from chatbuddy.agents.llm.prompt import prompt_template, system_prompt
from chatbuddy.agents.llm.tools import TOOLS, tool_schemas
from chatbuddy.agents.shop import Catalogue, OrderBackend
from chatbuddy.errors import ConfigurationError
from chatbuddy.settings import Settings

__all__ = ["TOOLS", "LlmAgent", "LlmOptions", "llm_agent", "tool_schemas"]


def llm_agent(catalogue: Catalogue, orders: OrderBackend, settings: Settings) -> LlmAgent:
    """The llm agent the settings describe. Raises ConfigurationError (one line) when it
    cannot work: no model, a bad URL or prompt file, the SDK not installed."""
    if not settings.llm_model:
        raise ConfigurationError(
            "--agent llm needs a model: --llm-model NAME (or CHATBUDDY_LLM_MODEL), "
            "e.g. gpt-4o-mini, or llama3.1 with Ollama"
        )
    url = urlsplit(settings.llm_base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigurationError(
            f"--llm-base-url {settings.llm_base_url!r} is not an http(s) URL, "
            "e.g. http://127.0.0.1:11434/v1"
        )
    template = prompt_template(settings.llm_system_prompt)
    model = Model(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=settings.llm_model,
        max_tokens=settings.llm_max_tokens,
        retries=settings.llm_retries,
    )
    fallback: Agent | None = None
    if settings.llm_fallback == "coordinator":
        fallback = CoordinatorAgent(catalogue, orders)
    return LlmAgent(
        catalogue,
        orders,
        model=model,
        system=system_prompt(template, catalogue),
        options=LlmOptions(
            timeout=settings.llm_timeout,
            max_tool_rounds=settings.llm_max_tool_rounds,
            history_chars=settings.llm_history_chars,
            session_tokens=settings.llm_session_tokens,
            daily_tokens=settings.llm_daily_tokens,
        ),
        turns=Turns(settings.llm_max_concurrency, settings.llm_max_waiting),
        spend=DailySpend(),
        fallback=fallback,
    )
