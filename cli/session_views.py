"""What `stats` and `sessions` print: totals, sessions, transcripts, CSV rows.

Chat text goes through :func:`cli.render.safe` (see cli/render.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .render import (
    ago,
    clean,
    clock,
    duration,
    safe,
    when,
)

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
