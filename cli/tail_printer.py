"""What `tail` and the takeover console print for each admin event, as it comes.

Chat text goes through :func:`cli.render.safe` (see cli/render.py).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from .render import (
    clean,
    clock,
    duration,
    json_line,
    safe,
)

# -- tail ----------------------------------------------------------------------

_KIND_STYLE = {
    "connection_opened": ("open", "green"),
    "connection_closed": ("close", "dim"),
    "user_message": ("user", "bold cyan"),
    "reply_chunk": ("reply", "magenta"),
    "reply_done": ("reply", "magenta"),
    "error": ("error", "bold red"),
    "handoff_requested": ("HUMAN", "bold reverse yellow"),
    "tool_call": ("tool", "blue"),
    "operator_joined": ("human", "bold green"),
    "operator_left": ("human", "green"),
    "operator_message": ("human", "bold green"),
    "note": ("note", "italic yellow"),
    "typing": ("typing", "dim"),
    "read": ("read", "dim"),
    "reaction": ("react", "cyan"),
}


class TailPrinter:
    """Prints admin events as lines; a streamed reply grows on its line as it streams."""

    def __init__(self, console: Console, *, notices: Console | None = None) -> None:
        # Where event lines go.
        self._console = console
        # Where the CLI's own remarks go (stderr, so --json output stays clean).
        self._notices = notices or console
        # (session, message_id) of the reply whose line is still open, if any.
        self._open: tuple[str, int] | None = None

    def event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        key = (event["session_id"], event.get("message_id", -1))
        if kind == "reply_chunk":
            if self._open != key:
                self._finish_line()
                self._console.print(self._prefix(event), end="", soft_wrap=True)
                self._open = key
            self._console.print(safe(event["delta"]), end="", soft_wrap=True)
            return
        if kind == "reply_done" and self._open == key:
            self._console.print(self._reply_meta(event), soft_wrap=True)
            self._open = None
            return
        self._finish_line()
        line = self._prefix(event)
        line.append_text(self._body(event))
        self._console.print(line, soft_wrap=True)

    def notice(self, text: str, style: str = "yellow") -> None:
        """A line from the CLI itself (lost connection, reconnecting)."""
        self._finish_line()
        self._notices.print(Text(text, style=style), soft_wrap=True)

    def _finish_line(self) -> None:
        if self._open is not None:
            self._console.print()
            self._open = None

    def _prefix(self, event: dict[str, Any]) -> Text:
        label, style = _KIND_STYLE.get(event["type"], (event["type"], ""))
        return Text.assemble(
            (clock(event.get("timestamp")), "dim"),
            " ",
            safe(event["session_id"], "bold"),
            " ",
            (f"{label:<5}", style),
            " ",
        )

    def _body(self, event: dict[str, Any]) -> Text:
        kind = event["type"]
        if kind == "connection_opened":
            who = event.get("user_id") or "anonymous"
            how = "resumed" if event.get("resumed") else "new session"
            return safe(
                f"{event['connection_id']} {who} from {event.get('ip_address', '?')} ({how})"
            )
        if kind == "connection_closed":
            return safe(
                f"{event['connection_id']} code {event.get('close_code', '-')} "
                f"after {duration(event.get('duration', 0.0))}"
            )
        if kind == "user_message":
            return safe(event["content"])
        if kind == "reply_done":
            text = safe(event["content"])
            text.append_text(self._reply_meta(event))
            return text
        if kind == "error":
            return safe(f"{event['error_type']}: {event['error_message']}")
        if kind == "tool_call":
            outcome = "ok" if event.get("ok") else "refused"
            text = safe(
                f"{event['tool']} for reply #{event['message_id']}: {outcome} in "
                f"{1000 * event.get('seconds', 0.0):.1f} ms"
            )
            if "arguments" in event:
                text.append_text(safe("  " + json_line(event["arguments"]), "dim"))
            return text
        if kind == "handoff_requested":
            who = event.get("user_id") or "anonymous"
            language = event.get("language") or "?"
            where = f", reply #{event['message_id']}" if event.get("message_id") else ""
            return safe(
                f"a person is asked to take over: {event['reason']} "
                f"({who}, language {language}{where}) — chatbuddy takeover {event['session_id']}",
                "bold yellow",
            )
        return handoff_body(event)

    @staticmethod
    def _reply_meta(event: dict[str, Any]) -> Text:
        return Text(
            f"  ({clean(event['agent'])} · {event['confidence']:.2f} · "
            f"{1000 * event['processing_time']:.1f} ms)",
            style="dim",
        )


# -- a person in the conversation -------------------------------------------------


def handoff_body(event: dict[str, Any]) -> Text:
    """What the tail (and the takeover console) says about an operator or a customer's
    typing, reading and reacting."""
    kind = event["type"]
    if kind == "operator_joined":
        return safe(f"{event['operator']} took the conversation over")
    if kind == "operator_left":
        why = "gave it back" if event["reason"] == "released" else "went silent: the grace ran out"
        return safe(f"{event['operator']} {why}; the assistant answers again")
    if kind == "operator_message":
        text = safe(f"{event['operator']}: ", "bold")
        text.append_text(safe(event["content"]))
        return text
    if kind == "note":
        return safe(f"{event['operator']} (internal): {event['content']}")
    if kind == "typing":
        return safe(
            "the customer is typing…"
            if event["state"] == "start"
            else "the customer stopped typing"
        )
    if kind == "read":
        return safe(f"the customer has read up to #{event['message_id']}")
    if kind == "reaction":
        mark = {"up": "👍", "down": "👎"}.get(event.get("reaction") or "", "no reaction")
        route = f"/{event['route']}" if event.get("route") else ""
        return safe(f"{mark} on reply #{event['message_id']} ({event['agent']}{route})")
    return safe(str(event))
