"""The assistant, measured: the conversation test set replayed on a real server.

Each set's floor is the score it reached when it was last measured (README.md
and docs/assistant.md quote them); a change that answers fewer turns right
fails here, with the turns that went wrong.
"""

from __future__ import annotations

import pytest

from chatbuddy.settings import Settings
from tests.builders import unlimited
from tests.conftest import ADMIN_TOKEN, Connect
from tests.conversation_set import Ask, load, replay

#: Set -> turns that must come out right (of all its turns).
FLOORS = {"tuning": 120, "holdout": 31}


@pytest.fixture
def settings() -> Settings:
    """No rate limits: a conversation here is typed faster than people type."""
    return unlimited(port=0, admin_token=ADMIN_TOKEN)


@pytest.mark.parametrize("name", sorted(FLOORS))
async def test_the_assistant_answers_the_conversation_set_at_least_as_well_as_measured(
    name: str, connect: Connect
) -> None:
    async def open_session(session_id: str) -> Ask:
        client = await connect(session_id)
        await client.greeting()
        return client.chat

    conversations = load(name)
    turns, misses = await replay(conversations, open_session)
    right = turns - len(misses)
    report = "\n".join(
        f"[{m.conversation}] > {m.said}\n  reply: {m.reply!r}\n  missing {list(m.missing)}, "
        f"unwanted {list(m.unwanted)}"
        for m in misses
    )
    assert right >= FLOORS[name], f"{name}: {right}/{turns} right\n{report}"


def test_the_set_is_big_enough_and_keeps_enough_aside() -> None:
    tuning = sum(len(c.turns) for c in load("tuning"))
    holdout = sum(len(c.turns) for c in load("holdout"))
    assert tuning + holdout >= 120
    assert holdout >= 30
    multi_turn = [c for c in load("tuning") + load("holdout") if len(c.turns) > 1]
    assert len(multi_turn) >= 10
