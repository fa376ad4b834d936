"""What bounds the llm agent's load and cost: turns with a bounded queue, tokens per day
and per session; and what the model is shown of a conversation."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from chatbuddy.agents.llm.limits import DailySpend, Turns, session_tokens
from chatbuddy.agents.llm.prompt import conversation, prompt_template, system_prompt
from chatbuddy.agents.shop import Shop
from chatbuddy.errors import AgentBusy, AgentFailed, ConfigurationError
from chatbuddy.records import StoredMessage, stored_message
from tests.helpers import TIMEOUT, eventually


def later(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_turns_are_handed_on_in_order_and_past_the_queue_a_reply_is_busy() -> None:
    turns = Turns(concurrency=1, max_waiting=2)
    order: list[str] = []
    held = asyncio.Event()

    async def reply(name: str, hold: bool = False) -> None:
        async with turns.turn(later(TIMEOUT)):
            order.append(name)
            if hold:
                await held.wait()

    first = asyncio.create_task(reply("first", hold=True))
    await eventually(lambda: order == ["first"], "the first turn")
    waiting = [asyncio.create_task(reply(name)) for name in ("second", "third")]
    await eventually(lambda: turns.waiting == 2, "two waiting")
    with pytest.raises(AgentBusy):
        await reply("fourth")
    held.set()
    await asyncio.gather(first, *waiting)
    assert order == ["first", "second", "third"]
    async with turns.turn(later(TIMEOUT)):  # every turn came back
        assert turns.waiting == 0


async def test_waiting_past_the_deadline_is_a_timeout_and_gives_up_its_place() -> None:
    turns = Turns(concurrency=1, max_waiting=1)
    held, holding = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with turns.turn(later(TIMEOUT)):
            holding.set()
            await held.wait()

    task = asyncio.create_task(holder())
    await asyncio.wait_for(holding.wait(), TIMEOUT)
    with pytest.raises(AgentFailed) as failed:
        async with turns.turn(later(0.05)):
            pass
    assert (failed.value.reason, failed.value.retryable) == ("timeout", True)
    assert turns.waiting == 0
    held.set()
    await task


def test_the_days_tokens_start_again_at_midnight_utc() -> None:
    today = [date(2026, 11, 26)]
    spend = DailySpend(lambda: today[0])
    spend.add(700)
    spend.add(300)
    assert spend.used() == 1000
    today[0] = date(2026, 11, 27)
    assert spend.used() == 0


def message(
    n: int, role: Literal["user", "assistant"], content: str, **extra: Any
) -> StoredMessage:
    return stored_message(id=n, role=role, content=content, timestamp=datetime.now(UTC), **extra)


def test_a_sessions_tokens_are_read_from_its_latest_counted_reply() -> None:
    history = [
        message(1, "user", "hi"),
        message(2, "assistant", "hello", metadata={"usage": {"session_total": 120}}),
        message(3, "user", "again"),
        message(4, "assistant", "offline answer", metadata={"agent": "general"}),
    ]
    assert session_tokens(history) == 120
    assert session_tokens([]) == 0


def test_the_model_sees_the_newest_messages_that_fit_and_only_what_was_said() -> None:
    note = StoredMessage.model_construct(
        id=5, role="operator", content="internal: customer is difficult", timestamp=None
    )
    history = [
        message(1, "user", "x" * 50),
        message(2, "assistant", "y" * 50, metadata={"context": {"order": "10042"}}),
        message(3, "user", "recent question"),
        message(4, "assistant", "", cancelled=True),
        note,
        message(6, "assistant", "recent answer"),
    ]
    messages = conversation("SYSTEM", history, "now", budget=60)
    assert messages == [
        {"role": "system", "content": "SYSTEM"},
        {"role": "user", "content": "recent question"},
        {"role": "assistant", "content": "recent answer"},
        {"role": "user", "content": "now"},
    ]


def test_the_system_prompt_names_the_shop_and_a_shops_own_file_replaces_it(
    tmp_path: Path,
) -> None:
    shop = Shop.demo()
    built_in = system_prompt(prompt_template(None), shop)
    assert shop.name in built_in
    assert "{" not in built_in
    own = tmp_path / "prompt.txt"
    own.write_text("Te a {shop} asszisztense vagy.", encoding="utf-8")
    assert system_prompt(prompt_template(str(own)), shop) == f"Te a {shop.name} asszisztense vagy."
    with pytest.raises(ConfigurationError, match="cannot read it"):
        prompt_template(str(tmp_path / "missing.txt"))
