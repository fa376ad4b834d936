"""The conversation test set (tests/conversations/): reading it, and replaying it on a server.

``python -m tests.conversation_set tuning`` replays a set on an in-process server
and prints every turn that failed (for tuning: never run it on the holdout set).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from chatbuddy.client.chat import Received

FOLDER = Path(__file__).with_name("conversations")
_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " ", "\u2009": " "})


@dataclass
class Turn:
    said: str
    must: list[str] = field(default_factory=list)
    must_not: list[str] = field(default_factory=list)


@dataclass
class Conversation:
    title: str
    turns: list[Turn] = field(default_factory=list)


@dataclass(frozen=True)
class Miss:
    conversation: str
    said: str
    reply: str
    missing: tuple[str, ...]
    unwanted: tuple[str, ...]


def load(name: str) -> list[Conversation]:
    """The conversations of ``tests/conversations/<name>.txt``."""
    conversations: list[Conversation] = []
    for number, line in enumerate((FOLDER / f"{name}.txt").read_text("utf-8").splitlines(), 1):
        if not line.strip() or (line.startswith("#") and not line.startswith("##")):
            continue
        tag, _, rest = line.partition(" ")
        if tag == "##":
            conversations.append(Conversation(rest.strip()))
        elif tag == ">" and conversations:
            conversations[-1].turns.append(Turn(rest.strip()))
        elif tag in ("+", "-") and conversations and conversations[-1].turns:
            facts = conversations[-1].turns[-1]
            (facts.must if tag == "+" else facts.must_not).append(rest.strip())
        else:
            raise ValueError(f"{name}.txt line {number}: cannot read {line!r}")
    return conversations


def normal(text: str) -> str:
    """Compared without case and with every kind of space a plain one."""
    return text.translate(_SPACES).casefold()


def judge(turn: Turn, reply: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(facts missing, facts that should not be there) of ``reply``."""
    text = normal(reply)
    missing = tuple(f for f in turn.must if normal(f) not in text)
    unwanted = tuple(f for f in turn.must_not if normal(f) in text)
    return missing, unwanted


#: Sends one message in a session and returns the completed reply's data.
Ask = Callable[[str, str], Awaitable[Received]]


async def replay(
    conversations: list[Conversation], open_session: Callable[[str], Awaitable[Ask]]
) -> tuple[int, list[Miss]]:
    """Replay every conversation in its own session; (turns, misses)."""
    turns, misses = 0, []
    for index, conversation in enumerate(conversations):
        ask = await open_session(f"conv-{index}")
        for turn in conversation.turns:
            turns += 1
            reply = await ask(f"conv-{index}", turn.said)
            missing, unwanted = judge(turn, reply["content"])
            if missing or unwanted:
                misses.append(
                    Miss(conversation.title, turn.said, reply["content"], missing, unwanted)
                )
    return turns, misses


async def _main(name: str) -> None:
    from chatbuddy.server import Server
    from chatbuddy.settings import Settings
    from tests.helpers import ChatClient

    async with Server(Settings(port=0, rate_limit=0)) as server:
        clients: list[ChatClient] = []

        async def open_session(session_id: str) -> Ask:
            client = await ChatClient.open(server.port, session_id)
            clients.append(client)
            await client.greeting()
            return client.chat

        turns, misses = await replay(load(name), open_session)
        for client in clients:
            client.close()
    for miss in misses:
        print(f"[{miss.conversation}] > {miss.said}\n    {miss.reply!r}")
        print(f"    missing {list(miss.missing)} unwanted {list(miss.unwanted)}")
    print(
        f"{name}: {turns - len(misses)}/{turns} turns right ({(turns - len(misses)) / turns:.1%})"
    )


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1] if len(sys.argv) > 1 else "tuning"))
