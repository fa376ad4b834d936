"""Rendering for the admin commands: pure functions of data and a Console.

Text from chat users is untrusted. It is always wrapped in ``rich.text.Text``
(which never parses markup) after terminal escape sequences and control
characters are removed, so nobody can restyle or spoof an operator's terminal
by typing ``[bold red]`` or an ANSI escape into the chat.
"""

from __future__ import annotations

import json
import re
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from chatbuddy.admin_tokens import TokenEntry

from .loadgen import LoadResult

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), and two-character escapes.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")
# Line breaks of every kind: each would start a line the chat user wrote, one that
# could pass for the CLI's own (a forged "assistant: your refund was approved").
_BREAKS = re.compile("\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Characters a terminal does not show as themselves: the remaining C0/C1 controls
# (tab becomes a space), bidirectional overrides, embeddings, isolates and marks
# (which reorder what follows them), and invisible spaces and joiners of words.
_INVISIBLE = "\x00-\x08\x0e-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2069\ufeff"
_CONTROLS = re.compile(f"[{_INVISIBLE}]")
#: How an embedded line break is shown.
BREAK_MARK = "\u21b5"  # ↵


def clean(text: str) -> str:
    """``text`` on one line without terminal escapes, controls and invisible
    characters; its line breaks shown as ↵."""
    text = _BREAKS.sub(f" {BREAK_MARK} ", _ESCAPES.sub("", text))
    return _CONTROLS.sub("", text.replace("\t", " "))


def safe(text: object, style: str = "") -> Text:
    """Untrusted text as a rich Text: no markup parsed, no escapes kept, one line."""
    return Text(clean(str(text)), style=style)


# Characters json.dumps(ensure_ascii=False) writes raw that a terminal or a pager
# would act on: C1 controls, bidi controls, invisible characters, line separators.
_JSON_UNSAFE = re.compile(f"[{_INVISIBLE}\x85\u2028\u2029]")


def json_line(document: object) -> str:
    """``document`` as one line of JSON, readable (accents kept) but with every
    character a terminal would act on written as a ``\\uXXXX`` escape."""
    raw = json.dumps(document, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", raw)


def clock(timestamp: str | None) -> str:
    """``2024-01-15T10:30:00.123Z`` -> ``10:30:00`` (UTC, as the server stores it)."""
    if not timestamp:
        return "--:--:--"
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).strftime("%H:%M:%S")
    except ValueError:
        return "--:--:--"


def when(timestamp: str | None) -> str:
    """``2024-01-15T10:30:00Z`` -> ``2024-01-15 10:30:00``."""
    if not timestamp:
        return "-"
    return timestamp.replace("T", " ")[:19]


def ago(timestamp: str | None, now: datetime) -> str:
    """How long before ``now``, briefly: ``42s``, ``5m``, ``3h``, ``2d``."""
    if not timestamp:
        return "-"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def duration(seconds: float) -> str:
    """3723.4 -> ``1h 02m 03s``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.1f}s"


def span(seconds: float) -> str:
    """A setting's duration in its largest whole unit: 7776000 -> ``90d``, 5400 -> ``90m``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def storage_line(engine: str, path: Path, retention: float | None) -> str:
    """What ``serve`` says at start about where conversations are kept."""
    if engine == "sqlite":
        kept = (
            "kept until erased (--retention keep)"
            if retention is None
            else f"removed after {span(retention)} idle (--retention)"
        )
        return f"Conversations are kept in {path}; transcripts are {kept}."
    if engine == "memory":
        return "Conversations are kept in memory only: a restart loses them (--store memory)."
    return "Conversations are kept in Redis, shared with every server using it."


# -- stats and sessions --------------------------------------------------------


def totals_table(stats: dict[str, Any]) -> Table:
    ws, counters = stats["websocket_stats"], stats.get("counters", {})
    table = Table(title="ChatBuddy", box=box.SIMPLE_HEAVY, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rows: list[tuple[str, object]] = [
        ("connections", ws["total_connections"]),
        ("live sessions", ws["total_sessions"]),
        ("users", ws["total_users"]),
        ("messages in", counters.get("messages_received", 0)),
        ("replies out", counters.get("replies_sent", 0)),
        ("errors", counters.get("errors_sent", 0)),
        *(
            [
                ("model tokens in", counters["prompt_tokens"]),
                ("model tokens out", counters.get("completion_tokens", 0)),
            ]
            if counters.get("prompt_tokens") or counters.get("completion_tokens")
            else []
        ),
        ("uptime", duration(stats.get("uptime_seconds", 0.0))),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def sessions_table(
    sessions: list[dict[str, Any]], *, title: str = "Sessions", now: datetime | None = None
) -> Table:
    """Sessions with their age and how long they have been idle."""
    now = now or datetime.now(UTC)
    table = Table(title=title, box=box.SIMPLE_HEAVY)
    table.add_column("session")
    table.add_column("user")
    table.add_column("connections", justify="right")
    table.add_column("messages", justify="right")
    table.add_column("age", justify="right")
    table.add_column("idle", justify="right")
    for s in sessions:
        table.add_row(
            safe(s["session_id"]),
            safe(s.get("user_id") or "-"),
            str(s.get("connections", 0)),
            str(s.get("message_count", 0)),
            ago(s.get("created_at"), now),
            ago(s.get("last_activity"), now),
        )
    return table


def users_table(users: dict[str, int]) -> Table:
    table = Table(title="Users", box=box.SIMPLE_HEAVY)
    table.add_column("user")
    table.add_column("connections", justify="right")
    for user, count in sorted(users.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(safe(user), str(count))
    return table


def reactions_table(reactions: list[dict[str, Any]]) -> Table:
    """👍 and 👎 per agent and route, with the share of 👍: where the bot fails."""
    table = Table(title="Reactions to replies", box=box.SIMPLE_HEAVY)
    table.add_column("agent")
    table.add_column("route")
    table.add_column("👍", justify="right")
    table.add_column("👎", justify="right")
    table.add_column("👍 share", justify="right")
    for r in reactions:
        table.add_row(
            safe(r["agent"]),
            safe(r.get("route") or "-"),
            str(r["up"]),
            str(r["down"]),
            f"{100 * r['up_share']:.0f}%",
        )
    return table


def stats_view(
    stats: dict[str, Any], sessions: dict[str, Any] | None, *, now: datetime | None = None
) -> Group:
    """Totals, the most recently active sessions (None: not shown), users, and reactions,
    as one renderable."""
    parts: list[Table] = [totals_table(stats)]
    if sessions is not None:
        parts.append(sessions_table(sessions["sessions"], title=_page_title(sessions), now=now))
    if stats["websocket_stats"]["users"]:
        parts.append(users_table(stats["websocket_stats"]["users"]))
    if stats.get("reactions"):
        parts.append(reactions_table(stats["reactions"]))
    return Group(*parts)


def waiting_view(waiting: list[dict[str, Any]]) -> RenderableType:
    """Customers waiting for a person, the one waiting longest first."""
    if not waiting:
        return Text("Nobody is waiting for a person.")
    table = Table(title=f"Waiting for a person ({len(waiting)})", box=box.SIMPLE_HEAVY)
    table.add_column("session")
    table.add_column("user")
    table.add_column("waited", justify="right")
    table.add_column("messages", justify="right")
    table.add_column("connections", justify="right")
    for w in waiting:
        table.add_row(
            safe(w["session_id"]),
            safe(w.get("user_id") or "-"),
            duration(w.get("waited_seconds", 0.0)),
            str(w.get("message_count", 0)),
            str(w.get("connections", 0)),
        )
    return table


def sessions_view(sessions: dict[str, Any]) -> RenderableType:
    """A page of the session list."""
    if not sessions["sessions"]:
        return Text("No sessions.")
    return sessions_table(sessions["sessions"], title=_page_title(sessions))


def _page_title(page: dict[str, Any]) -> str:
    shown, total = len(page["sessions"]), page["total"]
    if shown == total:
        return f"Sessions ({total})"
    start = page["offset"] + 1
    return f"Sessions {start}-{page['offset'] + shown} of {total}"


def transcript_view(document: dict[str, Any]) -> Group:
    """A session's details and its history as a transcript."""
    s = document["session"]
    header = Text.assemble(
        ("session ", "bold"),
        safe(s["session_id"]),
        ("  user ", "bold"),
        safe(s.get("user_id") or "-"),
        ("  connections ", "bold"),
        str(s.get("connections", 0)),
        ("  messages ", "bold"),
        str(s.get("message_count", 0)),
        ("  created ", "bold"),
        when(s.get("created_at")),
    )
    hold = s.get("hold")
    if hold:
        header.append_text(safe(f"  held by {hold['operator']}", "bold yellow"))
    lines: list[Text] = [header]
    if not document["messages"]:
        lines.append(Text("(no messages)"))
    entries = [(m.get("timestamp") or "", 0, m) for m in document["messages"]]
    entries += [
        (n.get("timestamp") or "", 1, {**n, "role": "note"}) for n in document.get("notes", ())
    ]
    for _, _, m in sorted(entries, key=lambda entry: (entry[0], entry[1])):
        lines.append(transcript_line(m))
    return Group(*lines)


def transcript_line(m: dict[str, Any]) -> Text:
    """One message (or internal note) of a transcript: time, who, text."""
    line = Text.assemble((clock(m.get("timestamp")), "dim"), " ")
    role = m["role"]
    if role == "user":
        line.append_text(safe(m.get("user_id") or "user", "bold cyan"))
    elif role == "operator":
        line.append_text(safe(f"{m.get('name') or 'operator'} (operator)", "bold green"))
    elif role == "note":
        line.append_text(safe(f"note by {m.get('operator')}", "italic yellow"))
    else:
        line.append_text(safe(m.get("agent") or "assistant", "bold magenta"))
    line.append(": ")
    line.append_text(safe(m["content"]))
    if m.get("reaction"):
        line.append(" 👍" if m["reaction"] == "up" else " 👎")
    return line


#: The columns of `sessions export --format csv`: one row per message.
CSV_COLUMNS = (
    "session_id",
    "user_id",
    "message_id",
    "role",
    "timestamp",
    "content",
    "client_message_id",
    "in_reply_to",
    "agent",
    "confidence",
)


def csv_rows(document: dict[str, Any]) -> list[list[str]]:
    """An exported session's messages as CSV rows (CSV_COLUMNS), text as written."""
    session = document["session"]
    rows = []
    for m in document["messages"]:
        values = {**m, "session_id": session["session_id"], "user_id": m.get("user_id")}
        values["user_id"] = values["user_id"] or session.get("user_id")
        values["message_id"] = m["id"]
        rows.append(["" if values.get(c) is None else str(values[c]) for c in CSV_COLUMNS])
    return rows


def erased_view(result: dict[str, Any], *, user_id: str | None = None) -> Text:
    """What `sessions delete` did."""
    erased = result["erased"]
    whose = f" of user {clean(user_id)}" if user_id else ""
    noun = "session" if len(erased) == 1 else "sessions"
    return Text(
        f"Erased {len(erased)} {noun}{whose}: {', '.join(clean(s) for s in erased)}. "
        f"Their open tabs were closed (code {result['close_code']})."
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


# -- send ----------------------------------------------------------------------


def latency_summary(latencies: list[float], failures: int) -> dict[str, Any]:
    """Round-trip times in ms: count, min, median, p90, max (None without replies)."""
    ms = sorted(1000 * t for t in latencies)
    figures: dict[str, float | None] = dict.fromkeys(("min_ms", "median_ms", "p90_ms", "max_ms"))
    if ms:
        figures = {
            "min_ms": round(ms[0], 2),
            "median_ms": round(statistics.median(ms), 2),
            "p90_ms": round(ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))], 2),
            "max_ms": round(ms[-1], 2),
        }
    return {"sent": len(ms) + failures, "ok": len(ms), "failed": failures, **figures}


def latency_table(latencies: list[float], failures: int) -> Table:
    """Round-trip times in ms: count, min, median, p90, max."""
    table = Table(title="Round trips", box=box.SIMPLE_HEAVY)
    for column in ("sent", "ok", "failed", "min", "median", "p90", "max"):
        table.add_column(column, justify="right")
    summary = latency_summary(latencies, failures)
    figures = [
        "-" if summary[key] is None else f"{summary[key]:.1f}"
        for key in ("min_ms", "median_ms", "p90_ms", "max_ms")
    ]
    table.add_row(str(summary["sent"]), str(summary["ok"]), str(summary["failed"]), *figures)
    return table


def result_table(result: LoadResult, url: str) -> Table:
    """`chatbuddy bench`'s result."""
    table = Table(title=f"chatbuddy bench {url}", box=box.SIMPLE_HEAVY)
    for column in (
        "connections",
        "replies/s",
        "replies",
        "errors",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        str(result.connections),
        f"{result.rate:,.0f}",
        f"{result.replies:,}",
        str(result.errors),
        f"{result.p50_ms:.2f}",
        f"{result.p90_ms:.2f}",
        f"{result.p99_ms:.2f}",
        f"{result.max_ms:.2f}",
    )
    return table


# -- shop files ----------------------------------------------------------------


def shop_summary_table(summary: dict[str, Any]) -> Group:
    """A shop file's summary (``chatbuddy shop check``): its categories, then its totals."""
    table = Table(
        title=f"{clean(summary['name'])} ({summary['language']}, {summary['currency']})",
        box=box.SIMPLE_HEAVY,
    )
    table.add_column("category")
    table.add_column("hu")
    table.add_column("en")
    table.add_column("products", justify="right")
    table.add_column("in stock", justify="right")
    for c in summary["categories"]:
        table.add_row(
            safe(c["key"]), safe(c["hu"]), safe(c["en"]), str(c["products"]), str(c["in_stock"])
        )
    totals = Table(box=box.SIMPLE, show_header=False)
    totals.add_column("what", style="bold")
    totals.add_column("value")
    totals.add_row("products", f"{summary['products']} ({summary['aliases']} aliases)")
    totals.add_row("orders", str(summary["orders"]))
    totals.add_row("coupons", safe(", ".join(summary["coupons"]) or "-"))
    totals.add_row("policies", safe(", ".join(summary["policies"]) or "-"))
    return Group(table, totals, Text("The shop file is valid.", style="green"))


def tokens_table(entries: list[TokenEntry]) -> Table:
    """The admin tokens of a tokens file: name, role, when made (never a token or hash)."""
    table = Table(title=f"Admin tokens ({len(entries)})", box=box.SIMPLE_HEAVY)
    for column in ("name", "role", "created"):
        table.add_column(column)
    for entry in entries:
        table.add_row(entry.name, entry.role.label, entry.created)
    return table


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
