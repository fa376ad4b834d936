"""``chatbuddy send``: talk to a server as a chat client would."""

from __future__ import annotations

import asyncio
import secrets
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import click
from rich.console import Console
from rich.text import Text

from chatbuddy.client.chat import Answer, ChatSocket
from chatbuddy.client.target import Target

from . import aio
from .render import json_line, safe
from .result_tables import latency_summary, latency_table
from .secrets import file_option, resolve
from .target import identifier, target_options


@click.command()
@target_options
@click.argument("text", required=False)
@click.option(
    "--session",
    "session_id",
    callback=identifier,
    help="Session to talk in (default: a new one, printed so you can continue it).",
)
@click.option(
    "--session-token",
    envvar="CHATBUDDY_SESSION_TOKEN",
    show_envvar=True,
    help="The token of an existing --session (printed when the session was made). "
    "Visible to other local users in `ps`: prefer --session-token-file or the "
    "environment variable.",
)
@file_option("--session-token-file", "CHATBUDDY_SESSION_TOKEN_FILE", "the session token")
@click.option("--user", "user_id", callback=identifier, help="User id to connect as.")
@click.option(
    "--identity",
    envvar="CHATBUDDY_IDENTITY",
    show_envvar=True,
    help="The customer's signed identity: a JWT the shop's site issued, which the server "
    "checks (serve --jwt-secret-file or --jwt-keys). Visible to other local users in `ps`: "
    "prefer --identity-file or the environment variable.",
)
@file_option("--identity-file", "CHATBUDDY_IDENTITY_FILE", "the signed identity")
@click.option(
    "--repeat",
    type=click.IntRange(1, 100_000),
    default=1,
    show_default=True,
    help="Send TEXT this many times, one after another, and summarize the latency.",
)
@click.option("-i", "--interactive", is_flag=True, help="Chat in a prompt until Ctrl-D.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the reply (with --repeat: the latency summary) as one line of JSON.",
)
def send(
    target: Target,
    text: str | None,
    session_id: str | None,
    session_token: str | None,
    session_token_file: str | None,
    user_id: str | None,
    identity: str | None,
    identity_file: str | None,
    repeat: int,
    interactive: bool,
    as_json: bool,
) -> None:
    """Send TEXT as a chat message and print the reply as it streams.

    The reply goes to standard output; who answered, how sure and how fast, and
    the session's details, go to standard error.

    \b
    Examples:
      chatbuddy send "Mennyi az ára a Samsung Galaxy S24-nek?"
      chatbuddy send --session web-1234 --session-token-file t.txt "Where is 10042?"
      chatbuddy send --identity-file anna.jwt "Where is my order 10042?"
      chatbuddy send --repeat 50 "hello"        # latency summary
      chatbuddy send --json "hello" | jq .reply.content
      chatbuddy send -i                           # a chat prompt
    """
    if text is None and not interactive:
        raise click.UsageError("give TEXT to send, or -i to chat interactively")
    if interactive and as_json:
        raise click.UsageError("--json prints data for scripts; -i is a prompt for people")
    if text is not None and not text.strip():
        raise click.UsageError("TEXT is empty")
    session_token = resolve(
        session_token,
        session_token_file,
        option="--session-token",
        twin="--session-token-file",
    )
    if session_token and not session_id:
        raise click.UsageError("--session-token needs --session")
    signed = resolve(identity, identity_file, option="--identity", twin="--identity-file")
    sid = session_id or f"cli-{secrets.token_hex(4)}"
    who = _Who(session_token, user_id, signed)
    aio.run(_send(target, sid, who, text, repeat, interactive, as_json))


@dataclass(frozen=True)
class _Who:
    """Who the chat client is: a session's token, a user id label, a signed identity."""

    session_token: str | None
    user_id: str | None
    identity: str | None


async def _send(
    target: Target,
    sid: str,
    who: _Who,
    text: str | None,
    repeat: int,
    interactive: bool,
    as_json: bool,
) -> None:
    out = Console(highlight=False)
    notes = Console(stderr=True, highlight=False)
    socket = await ChatSocket.connect(
        target, sid, user_id=who.user_id, session_token=who.session_token, identity=who.identity
    )
    try:
        greeting = await socket.greeting()
        if who.identity is not None:  # what the server made of it (a server that checks
            # no identities takes none, and the user is then a label or nobody)
            user = greeting["user_id"]
            notes.print(Text.assemble("the session's user: ", safe(user or "none")), style="dim")
        if greeting["resumed"]:
            notes.print(f"session {sid} (resumed)", style="dim")
        else:
            notes.print(
                f"session {sid} (new) — to continue it: --session {sid} "
                f"--session-token {greeting['session_token']}",
                style="dim",
                soft_wrap=True,  # one line, so it can be copied whole
            )
        if interactive:
            await _interactive(socket, sid, out, notes)
        elif repeat == 1:
            assert text is not None
            if as_json:
                _json_reply(sid, await socket.ask(sid, text))
            else:
                outcome = await socket.ask(sid, text, on_chunk=_streamer(out))
                _report(out, notes, outcome, streamed=True)
        else:
            assert text is not None
            await _repeat(socket, sid, text, repeat, out, as_json=as_json)
    finally:
        socket.close()


def _streamer(out: Console) -> Callable[[str], None]:
    def show(delta: str) -> None:
        out.print(safe(delta), end="", soft_wrap=True)

    return show


def _failed(outcome: Answer) -> None:
    if outcome.error is not None:
        error = outcome.error
        raise click.ClickException(f"{error['error_type']}: {error['error_message']}")


def _json_reply(sid: str, outcome: Answer) -> None:
    _failed(outcome)
    round_trip = round(1000 * outcome.seconds, 2)
    click.echo(json_line({"session_id": sid, "reply": outcome.reply, "round_trip_ms": round_trip}))


def _report(out: Console, notes: Console, outcome: Answer, *, streamed: bool) -> None:
    _failed(outcome)
    reply = outcome.reply
    assert reply is not None
    if not streamed:
        out.print(safe(reply["content"]), soft_wrap=True)
    else:
        out.print()
    agent = reply.get("metadata", {}).get("agent", reply.get("agent_type", "?"))
    notes.print(
        Text(
            f"— {agent} · confidence {reply['confidence']:.2f} · "
            f"{1000 * outcome.seconds:.1f} ms round trip",
            style="dim",
        ),
        soft_wrap=True,
    )


async def _repeat(
    socket: ChatSocket, sid: str, text: str, count: int, out: Console, *, as_json: bool
) -> None:
    latencies: list[float] = []
    failures = 0
    for number in range(1, count + 1):
        outcome = await socket.ask(sid, text)
        if outcome.reply is not None:
            latencies.append(outcome.seconds)
            agent = outcome.reply.get("metadata", {}).get("agent", "?")
            line = f"{number}/{count}  {1000 * outcome.seconds:7.1f} ms  {agent}"
            if not as_json:
                out.print(Text(line), soft_wrap=True)
        else:
            failures += 1
            error = outcome.error or {}
            if not as_json:
                out.print(Text(f"{number}/{count}  error {error.get('error_type')}", style="red"))
    if as_json:
        click.echo(json_line({"session_id": sid, **latency_summary(latencies, failures)}))
    else:
        out.print(latency_table(latencies, failures))
    if failures:
        raise click.ClickException(f"{failures} of {count} messages got no reply")


async def _interactive(socket: ChatSocket, sid: str, out: Console, notes: Console) -> None:
    notes.print("Type a message and press Enter; Ctrl-D or /quit to leave.", style="dim")
    prompt = Text("you> ", style="bold cyan")
    async for line in _lines(lambda: out.print(prompt, end="")):
        text = line.strip()
        if text in ("/quit", "/exit"):
            return
        if not text:
            continue
        out.print(Text("bot> ", style="bold magenta"), end="")
        outcome = await socket.ask(sid, text, on_chunk=_streamer(out))
        if outcome.error is not None:
            out.print()
            notes.print(
                f"{outcome.error['error_type']}: {outcome.error['error_message']}", style="red"
            )
        else:
            _report(out, notes, outcome, streamed=True)


async def _lines(prompt: Callable[[], None]) -> AsyncIterator[str]:
    """Lines from stdin without blocking the event loop.

    A daemon thread reads stdin: unlike the default executor, it never holds
    up the exit after Ctrl-C while blocked on input.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    while True:
        prompt()
        line = await queue.get()
        if line is None:
            return
        yield line
