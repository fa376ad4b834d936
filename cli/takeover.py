"""``chatbuddy takeover``: talk to a customer yourself, in a line-based console."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import click
from rich.console import Console

from chatbuddy.backoff import Backoff
from chatbuddy.client.admin import AdminClient, EventStream
from chatbuddy.client.target import Target
from chatbuddy.errors import (
    ClientFailure,
    Conflict,
    Disconnected,
    NotFound,
    ServerUnreachable,
    TokenMissing,
)
from chatbuddy.text import operator_text

from . import aio
from .console_input import open_reader
from .errors import Held, Missing
from .session_views import transcript_line, transcript_view
from .tail_printer import TailPrinter
from .target import acting_name, identifier, operator_option, target_options

HELP = (
    "You hold the conversation: what you type goes to the customer. /note TEXT keeps an "
    "internal note; /release or Ctrl-D gives it back to the assistant; Ctrl-C leaves "
    "without releasing (the assistant answers again after the server's grace)."
)


@click.command()
@target_options
@click.argument("session_id", metavar="SESSION", callback=identifier)
@operator_option
def takeover(target: Target, session_id: str, operator: str | None) -> None:
    """Take SESSION over from the assistant and talk to the customer yourself.

    Shows the conversation so far, then what happens as it happens; each line you
    type is sent to the customer, who sees your name and when you type. While you
    hold it the assistant is silent. /note TEXT adds an internal note (never shown
    to the customer or the assistant); /release or Ctrl-D gives the conversation
    back. If the console goes away without releasing, the hold lasts the server's
    --operator-grace (2 minutes), then the assistant answers again and says so.
    If the server restarts, the console reconnects by itself, keeps the hold and
    shows what was said meanwhile.
    Exit code 7 if another operator holds it.

    \b
    Examples:
      chatbuddy takeover web-1234
      chatbuddy takeover web-1234 --as "Kiss Anna"
      chatbuddy sessions --waiting          # who asked for a person
    """
    aio.run(_takeover(AdminClient(target), session_id, acting_name(target, operator)))


async def _takeover(client: AdminClient, session_id: str, operator: str | None) -> None:
    taken = await client.take(session_id, operator)
    operator = str(taken["hold"]["operator"])  # the server's word: a token's own name
    stream = await client.watch(session_id)
    console = OperatorConsole(client, session_id, operator, float(taken["grace_seconds"]))
    try:
        await console.run(stream)
    finally:
        console.close()


class OperatorConsole:
    """One operator holding one conversation: events in, lines out, the hold renewed."""

    def __init__(self, client: AdminClient, session_id: str, operator: str, grace: float) -> None:
        # The server's admin API.
        self._client = client
        # The conversation held.
        self._session_id = session_id
        # Who holds it, as the customer sees them.
        self._operator = operator
        # The hold lasts this long after each renewal; renewed well within it.
        self._grace = grace
        # The transcript and what happens; stderr for the console's own remarks.
        self._out = Console(highlight=False)
        self._printer = TailPrinter(self._out, notices=Console(stderr=True, highlight=False))
        # The event stream now (replaced when it is reconnected).
        self._stream: EventStream | None = None
        # Typing notices and read marks on their way to the server, in order.
        self._typing: asyncio.Queue[bool] = asyncio.Queue()
        self._reads: asyncio.Queue[int] = asyncio.Queue()
        # Set once the operator gave the conversation back.
        self._releasing = False
        # The ids of the messages shown: what the event stream repeats is not shown
        # again, and what it missed (while reconnecting) is fetched. A set, not the
        # highest id: a slow reply has a lower id than the message typed after it.
        self._shown: set[int] = set()

    async def run(self, stream: EventStream) -> None:
        self._stream = stream
        document = await self._client.session(self._session_id)
        self._out.print(transcript_view(document), soft_wrap=True)
        self._shown.update(m["id"] for m in document["messages"])
        read = [m["id"] for m in document["messages"] if m["role"] == "user"]
        if read:
            await self._mark_read(max(read))
        self._printer.notice(HELP, style="dim")
        tasks = [
            asyncio.create_task(self._type(), name="typing"),
            asyncio.create_task(self._read(), name="read"),
            asyncio.create_task(self._events(), name="events"),
            asyncio.create_task(self._renew(), name="renew"),
            asyncio.create_task(self._input(), name="input"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
        for task in done:
            task.result()  # a failure of any of them ends the console with its error

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    # -- what the operator types ---------------------------------------------------

    async def _input(self) -> None:
        reader = open_reader(f"{self._operator}> ", self._typing.put_nowait)
        async for line in reader.lines():
            text = line.strip()
            if not text:
                continue
            if text in ("/release", "/quit", "/exit"):
                break
            if text == "/help":
                self._printer.notice(HELP, style="dim")
            elif text.startswith("/note"):
                await self._note(text.removeprefix("/note").strip())
            elif text.startswith("/") and not text.startswith("//"):
                self._printer.notice(f"unknown command {text.split()[0]!r}; /help lists them")
            else:
                await self._say(text.removeprefix("/") if text.startswith("//") else line)
        self._releasing = True  # the operator_left that follows is ours
        released = await self._client.release(self._session_id, self._operator)
        if released["released"] is not None:
            self._printer.notice("Released: the assistant answers again.", style="green")

    async def _say(self, text: str) -> None:
        try:
            await self._client.say(self._session_id, self._operator, operator_text(text))
        except ValueError as error:
            self._printer.notice(f"not sent: {error}")
        except Conflict as error:
            raise Held(error.message) from None
        except ClientFailure as error:
            self._printer.notice(f"not sent: {error.message}")

    async def _note(self, text: str) -> None:
        try:
            await self._client.note(self._session_id, self._operator, operator_text(text))
        except ValueError:
            self._printer.notice("/note needs a text: /note TEXT")
        except ClientFailure as error:
            self._printer.notice(f"note not kept: {error.message}")

    async def _type(self) -> None:
        while True:
            on = await self._typing.get()
            with contextlib.suppress(ClientFailure):
                await self._client.typing(self._session_id, self._operator, on)

    async def _read(self) -> None:
        while True:
            await self._mark_read(await self._reads.get())

    async def _mark_read(self, message_id: int) -> None:
        with contextlib.suppress(ClientFailure):
            await self._client.read(self._session_id, self._operator, message_id)

    # -- what happens in the conversation -----------------------------------------

    async def _events(self) -> None:
        backoff = Backoff(first=0.5, cap=5.0)
        while True:
            assert self._stream is not None
            try:
                event = await self._stream.next()
            except Disconnected:
                self._printer.notice("lost the connection to the server; reconnecting")
                self._stream.close()
                self._stream = await self._reconnect(backoff)
                await self._catch_up()
                continue
            self._show(event)

    async def _catch_up(self) -> None:
        """Show what was said while the console was away: the new event stream starts
        now, the transcript has the rest."""
        try:
            document = await self._client.session(self._session_id)
        except ClientFailure as error:
            _unless_passing(error)
            self._printer.notice("could not fetch what was said meanwhile; see `sessions show`")
            return
        missed = [m for m in document["messages"] if m["id"] not in self._shown]
        if not missed:
            return
        self._printer.notice(f"Said while the console was away ({len(missed)}):", style="yellow")
        for message in missed:
            self._out.print(transcript_line(message), soft_wrap=True)
        self._shown.update(m["id"] for m in missed)
        read = [m["id"] for m in missed if m["role"] == "user"]
        if read:
            self._reads.put_nowait(max(read))

    async def _reconnect(self, backoff: Backoff) -> EventStream:
        """The event stream again once the server is back (a restart, a network blip),
        with the hold renewed at once so the assistant stays silent."""
        while True:
            await asyncio.sleep(backoff.delay())
            try:
                stream = await self._client.watch(self._session_id)
            except ClientFailure as error:
                _unless_passing(error)
                continue
            try:
                await self._client.take(self._session_id, self._operator)
            except Conflict as error:
                stream.close()
                raise Held(error.message) from None
            except NotFound:
                stream.close()
                raise Missing(
                    f"session {self._session_id!r} is gone: the server restarted without it "
                    "(it keeps them in memory: --store memory)"
                ) from None
            except ClientFailure as error:
                stream.close()
                _unless_passing(error)
                continue
            backoff.reset()
            self._printer.notice("Reconnected; you still hold the conversation.", style="green")
            return stream

    def _show(self, event: dict[str, Any]) -> None:
        """Print ``event``; a ClickException when the conversation is no longer ours."""
        kind = event["type"]
        if kind == "typing" and event["state"] == "stop":
            return
        if kind in _MESSAGES:
            if event["message_id"] in self._shown:
                return  # shown already, from the transcript
            if kind != "reply_chunk":  # a reply is shown once it is whole
                self._shown.add(event["message_id"])
        self._printer.event(event)
        if kind == "user_message":
            self._reads.put_nowait(event["message_id"])
        if kind == "operator_left" and event["operator"] == self._operator and not self._releasing:
            self._printer.notice("You no longer hold the conversation.", style="bold yellow")
            raise click.ClickException("the hold ended (released elsewhere, or the grace ran out)")

    async def _renew(self) -> None:
        every = max(1.0, self._grace / 3)
        while True:
            await asyncio.sleep(every)
            try:
                await self._client.take(self._session_id, self._operator)
            except Conflict as error:
                raise Held(error.message) from None
            except ClientFailure as error:
                self._printer.notice(f"could not renew the hold: {error.message}")


#: Events that carry a message of the conversation (``message_id``).
_MESSAGES = frozenset({"user_message", "operator_message", "reply_chunk", "reply_done"})


def _unless_passing(error: ClientFailure) -> None:
    """Re-raise ``error`` unless it is what a restarting server looks like: nothing
    listening, its token file not yet written, its store not yet reachable (5xx)."""
    passing = isinstance(error, ServerUnreachable | TokenMissing | Disconnected)
    if not passing and (error.status is None or error.status < 500):
        raise error
