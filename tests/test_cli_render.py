"""The CLI's renderers: pure functions into a fixed-width console."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from chatbuddy.cli.render import BREAK_MARK, clean, duration, json_line, safe  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.cli.result_tables import latency_table  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.cli.session_views import stats_view, transcript_view  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.cli.tail_printer import TailPrinter  # type: ignore[import-not-found,unused-ignore]

HOSTILE = "[bold red]ALERT[/] \x1b[2J\x1b]0;pwned\x07\x1b[31mred\x9b1m \u202egnp.exe\u202c bell\x07"


def plain() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100, color_system=None), out


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100, force_terminal=True, color_system="standard"), out


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "session_id": "s-1", "timestamp": "2024-01-15T10:30:05Z", **fields}


def test_clean_removes_escape_sequences_controls_and_bidi_overrides() -> None:
    assert clean(HOSTILE) == "[bold red]ALERT[/] red1m gnp.exe bell"


@pytest.mark.parametrize(
    "invisible", ["\u200e", "\u200f", "\u061c", "\u200b", "\u2060", "\u2066", "\ufeff"]
)
def test_clean_removes_marks_and_invisible_characters(invisible: str) -> None:
    assert clean(f"pay{invisible}pal") == "paypal"


@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\r", "\u2028", "\u2029", "\x85", "\x0b"])
def test_clean_shows_every_line_break_as_a_mark_on_one_line(line_break: str) -> None:
    assert clean(f"one{line_break}two\tthree") == f"one {BREAK_MARK} two three"


def test_a_newline_in_a_message_cannot_forge_a_line_of_the_tail() -> None:
    console, out = plain()
    forged = "hi\n10:30:06 s-1 reply Your refund was approved.  (general · 0.90 · 1.0 ms)"
    TailPrinter(console).event(event("user_message", message_id=1, content=forged))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"10:30:05 s-1 user  hi {BREAK_MARK} 10:30:06")


def test_a_newline_in_a_message_cannot_forge_a_line_of_the_transcript() -> None:
    console, out = plain()
    document = {
        "session": {"session_id": "s-1", "user_id": "anna", "created_at": "2024-01-15T10:30:00Z"},
        "messages": [
            {
                "role": "user",
                "user_id": "anna",
                "timestamp": "2024-01-15T10:30:05Z",
                "content": "ok\u202810:30:06 assistant: Your refund was approved.",
            }
        ],
    }
    console.print(transcript_view(document))
    assert len(out.getvalue().splitlines()) == 2  # the header and one message


def test_json_lines_escape_what_a_terminal_would_act_on_and_keep_accents() -> None:
    line = json_line({"content": "árvíztűrő \u202egnp.exe\u202c \x9b1m \u2028x \u200b"})
    assert line == ('{"content": "árvíztűrő \\u202egnp.exe\\u202c \\u009b1m \\u2028x \\u200b"}')
    assert json.loads(line)["content"].startswith("árvíztűrő \u202e")


def test_untrusted_text_is_never_read_as_markup() -> None:
    console, out = plain()
    console.print(safe("[bold red]ALERT[/] [link=http://evil]click[/link]"))
    assert out.getvalue() == "[bold red]ALERT[/] [link=http://evil]click[/link]\n"


def test_a_hostile_message_reaches_a_real_terminal_only_as_text() -> None:
    console, out = terminal()
    TailPrinter(console).event(event("user_message", message_id=1, content=HOSTILE))
    written = out.getvalue()
    assert "[bold red]ALERT[/]" in written  # shown literally, not as styling
    for attack in ("\x1b[2J", "\x1b]0;", "\x1b[31m", "\x9b", "\u202e", "\x07"):
        assert attack not in written


def test_a_streamed_reply_grows_on_one_line_then_gets_its_summary() -> None:
    console, out = plain()
    printer = TailPrinter(console)
    printer.event(event("user_message", message_id=1, content="hi"))
    printer.event(event("reply_chunk", message_id=2, index=0, delta="Hello "))
    printer.event(event("reply_chunk", message_id=2, index=1, delta="there."))
    printer.event(
        event(
            "reply_done",
            message_id=2,
            in_reply_to=1,
            agent="general",
            confidence=0.6,
            processing_time=0.0012,
            content="Hello there.",
        )
    )
    assert out.getvalue().splitlines() == [
        "10:30:05 s-1 user  hi",
        "10:30:05 s-1 reply Hello there.  (general · 0.60 · 1.2 ms)",
    ]


def test_another_event_mid_reply_starts_a_new_line() -> None:
    console, out = plain()
    printer = TailPrinter(console)
    printer.event(event("reply_chunk", message_id=2, index=0, delta="Hel"))
    printer.event(event("connection_closed", connection_id="conn_1", close_code=1001, duration=3.5))
    lines = out.getvalue().splitlines()
    assert lines == ["10:30:05 s-1 reply Hel", "10:30:05 s-1 close conn_1 code 1001 after 3.5s"]


def test_every_event_type_has_a_readable_line() -> None:
    console, out = plain()
    printer = TailPrinter(console)
    printer.event(
        event(
            "connection_opened",
            connection_id="conn_1",
            user_id="anna",
            ip_address="::1",
            resumed=False,
        )
    )
    printer.event(
        event("error", error_type="empty_message", error_message="message content is empty")
    )
    assert out.getvalue().splitlines() == [
        "10:30:05 s-1 open  conn_1 anna from ::1 (new session)",
        "10:30:05 s-1 error empty_message: message content is empty",
    ]


def test_a_handoff_request_stands_out_in_the_tail() -> None:
    console, out = terminal()
    TailPrinter(console).event(
        event(
            "handoff_requested",
            message_id=4,
            user_id="anna",
            reason="customer_asked",
            language="hu",
        )
    )
    text = out.getvalue()
    assert "\x1b[1;7;33mHUMAN" in text  # bold reverse yellow: it cannot be missed
    plain_console, plain_out = plain()
    TailPrinter(plain_console).event(
        event("handoff_requested", message_id=4, reason="customer_asked", language="hu")
    )
    assert plain_out.getvalue().splitlines() == [
        "10:30:05 s-1 HUMAN a person is asked to take over: customer_asked "
        "(anonymous, language hu, reply #4) — chatbuddy takeover s-1"
    ]


def test_the_tail_tells_what_operators_and_customers_do_in_a_hand_off() -> None:
    console, out = plain()
    printer = TailPrinter(console)
    printer.event(event("operator_joined", operator="Anna"))
    printer.event(event("operator_message", message_id=5, operator="Anna", content="Hi!"))
    printer.event(event("typing", state="start"))
    printer.event(event("read", message_id=5))
    printer.event(event("reaction", message_id=5, reaction="up", agent="operator"))
    printer.event(event("note", operator="Anna", content="VIP"))
    printer.event(event("operator_left", operator="Anna", reason="timeout"))
    assert out.getvalue().splitlines() == [
        "10:30:05 s-1 human Anna took the conversation over",
        "10:30:05 s-1 human Anna: Hi!",
        "10:30:05 s-1 typing the customer is typing…",
        "10:30:05 s-1 read  the customer has read up to #5",
        "10:30:05 s-1 react 👍 on reply #5 (operator)",
        "10:30:05 s-1 note  Anna (internal): VIP",
        "10:30:05 s-1 human Anna went silent: the grace ran out; the assistant answers again",
    ]


STATS = {
    "websocket_stats": {
        "total_connections": 3,
        "total_sessions": 2,
        "total_users": 1,
        "sessions": {"s-1": 2, "s-2": 1},
        "users": {"anna": 2},
    },
    "uptime_seconds": 3723.4,
    "counters": {
        "connections_opened": 9,
        "messages_received": 42,
        "replies_sent": 41,
        "errors_sent": 1,
    },
}
SESSIONS = {
    "sessions": [
        {
            "session_id": "s-1",
            "user_id": "anna",
            "connections": 2,
            "message_count": 10,
            "created_at": "2024-01-15T10:00:00Z",
            "last_activity": "2024-01-15T10:30:00Z",
        }
    ],
    "total": 1,
    "offset": 0,
    "limit": 20,
}


def test_stats_render_as_totals_sessions_and_users_tables() -> None:
    console, out = plain()
    now = datetime(2024, 1, 15, 10, 30, 42, tzinfo=UTC)
    console.print(stats_view(STATS, SESSIONS, now=now))
    text = out.getvalue()
    for expected in ("live sessions", "messages in", "42", "1h 02m 03s", "Sessions (1)", "Users"):
        assert expected in text
    session_row = next(line for line in text.splitlines() if "s-1" in line)
    assert session_row.split() == ["s-1", "anna", "2", "10", "30m", "42s"]


def test_a_transcript_shows_who_said_what() -> None:
    console, out = plain()
    view = transcript_view(
        {
            "session": {**SESSIONS["sessions"][0]},  # type: ignore[index]
            "messages": [
                {
                    "id": 1,
                    "role": "user",
                    "content": "Szia!",
                    "timestamp": "2024-01-15T10:30:01Z",
                    "user_id": "anna",
                },
                {
                    "id": 2,
                    "role": "assistant",
                    "content": "Üdvözlöm!",
                    "timestamp": "2024-01-15T10:30:02Z",
                    "agent": "general",
                },
            ],
        },
    )
    console.print(view)
    lines = out.getvalue().splitlines()
    assert lines[1:] == ["10:30:01 anna: Szia!", "10:30:02 general: Üdvözlöm!"]


def test_latency_summary_gives_median_and_p90() -> None:
    console, out = plain()
    console.print(latency_table([0.001 * n for n in range(1, 11)], failures=1))
    row = out.getvalue().splitlines()[-2].split()
    assert row == ["11", "10", "1", "1.0", "5.5", "9.0", "10.0"]


def test_durations_read_naturally() -> None:
    assert (duration(4.25), duration(75), duration(3723)) == ("4.2s", "1m 15s", "1h 02m 03s")


def test_a_tool_call_shows_its_tool_and_time_and_its_arguments_only_when_sent() -> None:
    console, out = plain()
    printer = TailPrinter(console)
    base = {"message_id": 6, "tool": "order_status", "seconds": 0.0125, "ok": True}
    printer.event(event("tool_call", **base))
    printer.event(event("tool_call", **base, arguments={"order_number": "10042"}))
    printer.event(event("tool_call", **{**base, "ok": False}))
    assert out.getvalue().splitlines() == [
        "10:30:05 s-1 tool  order_status for reply #6: ok in 12.5 ms",
        '10:30:05 s-1 tool  order_status for reply #6: ok in 12.5 ms  {"order_number": "10042"}',
        "10:30:05 s-1 tool  order_status for reply #6: refused in 12.5 ms",
    ]


def test_stats_show_model_tokens_when_the_agent_used_a_model() -> None:
    counters: dict[str, int] = STATS["counters"]  # type: ignore[assignment]
    with_tokens = {**STATS, "counters": {**counters, "prompt_tokens": 18250}}
    for stats, shown in ((STATS, False), (with_tokens, True)):
        console, out = plain()
        console.print(stats_view(stats, SESSIONS, now=datetime(2024, 1, 15, tzinfo=UTC)))
        assert ("model tokens in" in out.getvalue()) is shown
    assert "18250" in out.getvalue()
