"""What the model sees: the system prompt and the conversation, within a budget.

The system prompt is a text file (the built-in ``data/llm_prompt.txt``, or the
shop's own with ``--llm-system-prompt``) with ``{shop}``, ``{currency}``,
``{categories}``, ``{language}`` and ``{today}`` filled in. The conversation is
the session's stored messages, newest first until ``budget`` characters are
used: only what the customer and the assistant said, never metadata or
anything else stored with a session (operators' notes included).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from chatbuddy.agents.shop import Catalogue
from chatbuddy.errors import ConfigurationError
from chatbuddy.records import StoredMessage, utcnow

#: The roles whose words the model may see.
SPOKEN = ("user", "assistant")
_LANGUAGE_NAMES = {"hu": "Hungarian", "en": "English"}


def prompt_template(path: str | None) -> str:
    """The system prompt's template: the file at ``path``, or the built-in one."""
    if path is None:
        return (
            resources.files("chatbuddy.agents").joinpath("data/llm_prompt.txt").read_text("utf-8")
        )
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"--llm-system-prompt {path}: cannot read it: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"--llm-system-prompt {path}: not UTF-8 text") from None
    if not text.strip():
        raise ConfigurationError(f"--llm-system-prompt {path}: the file is empty")
    return text


def system_prompt(template: str, catalogue: Catalogue) -> str:
    """The template with the shop's facts filled in."""
    categories = ", ".join(f"{c.en} ({c.hu})" for c in catalogue.categories.values())
    values = {
        "{shop}": catalogue.name,
        "{currency}": catalogue.currency,
        "{categories}": categories,
        "{language}": _LANGUAGE_NAMES.get(catalogue.language, catalogue.language),
        "{today}": utcnow().date().isoformat(),
    }
    for key, value in values.items():
        template = template.replace(key, value)
    return template


def conversation(
    system: str, history: Sequence[StoredMessage], content: str, budget: int
) -> list[dict[str, Any]]:
    """The messages of one request: the system prompt, as much of ``history`` (oldest
    first) as fits in ``budget`` characters, newest kept, and the customer's ``content``."""
    earlier: list[dict[str, Any]] = []
    used = len(content)
    for message in reversed(history):
        if message.role not in SPOKEN or not message.content:
            continue
        used += len(message.content)
        if used > budget:
            break
        earlier.append({"role": message.role, "content": message.content})
    earlier.reverse()
    return [{"role": "system", "content": system}, *earlier, {"role": "user", "content": content}]
