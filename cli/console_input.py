"""Lines typed into the takeover console, while messages keep arriving above them.

In a terminal, prompt_toolkit edits the line (history, arrows, Ctrl-A/E) and
keeps it below what is printed meanwhile, and it tells us when the operator
starts and stops typing, so the customer sees "Anna is typing…". Without a
terminal (a script, a test) lines are read from stdin as they come and nothing
is prompted.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Protocol

#: Seconds without a keystroke after which the operator counts as not typing.
TYPING_IDLE = 4.0


class LineReader(Protocol):
    def lines(self) -> AsyncIterator[str]:
        """Each line the operator enters; ends at Ctrl-D (end of input)."""


class PlainReader:
    """Lines from a stdin that is not a terminal (a pipe, a file)."""

    def lines(self) -> AsyncIterator[str]:
        return _stdin_lines()


async def _stdin_lines() -> AsyncIterator[str]:
    # A daemon thread reads stdin: unlike the default executor, it never holds
    # up the exit after Ctrl-C while blocked on input.
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


class PromptReader:
    """Lines edited in a terminal, with typing reported to ``on_typing(on)``."""

    def __init__(self, prompt: str, on_typing: Callable[[bool], None]) -> None:
        from prompt_toolkit import PromptSession  # only interactive terminals need it

        # The line editor; its buffer tells when the text changes.
        self._session: PromptSession[str] = PromptSession()
        # Shown before the line being typed.
        self._prompt = prompt
        # Told when typing starts and stops (the customer sees it).
        self._on_typing = on_typing
        # Whether the operator counts as typing now.
        self._typing = False
        # Ends "typing" after TYPING_IDLE seconds without a keystroke.
        self._idle: asyncio.TimerHandle | None = None
        self._session.default_buffer.on_text_changed += self._changed

    def _changed(self, buffer: object) -> None:
        text = getattr(buffer, "text", "")
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if text.strip():
            self._set(True)
            self._idle = asyncio.get_running_loop().call_later(TYPING_IDLE, self._set, False)
        else:
            self._set(False)

    def _set(self, on: bool) -> None:
        if on != self._typing:
            self._typing = on
            self._on_typing(on)

    async def lines(self) -> AsyncIterator[str]:
        from prompt_toolkit.patch_stdout import patch_stdout

        with patch_stdout(raw=True):
            while True:
                try:
                    line = await self._session.prompt_async(self._prompt)
                except EOFError:
                    return
                finally:
                    self._set(False)
                yield line


def open_reader(prompt: str, on_typing: Callable[[bool], None]) -> LineReader:
    """A line editor in a terminal, plain lines from anything else."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return PromptReader(prompt, on_typing)
    return PlainReader()
