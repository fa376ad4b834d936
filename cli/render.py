"""Rendering for the admin commands: pure functions of data and a Console.

Text from chat users is untrusted. It is always wrapped in ``rich.text.Text``
(which never parses markup) after terminal escape sequences and control
characters are removed, so nobody can restyle or spoof an operator's terminal
by typing ``[bold red]`` or an ANSI escape into the chat.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from rich.text import Text

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
