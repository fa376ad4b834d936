"""docs/security.md's table of limits says what the code does."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from chatbuddy.settings import Settings

DOCS = Path(__file__).parent.parent / "docs" / "security.md"
#: | what | default | `--flag` | when it bites |
ROW = re.compile(r"^\| [^|]+ \| ([^|]+) \| `(--[a-z-]+)` \|", re.MULTILINE)


def shown(value: object) -> str:
    """A default as the table writes it: 24h, 20s, 5, 65536."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def test_every_limit_in_the_table_has_the_default_the_server_starts_with() -> None:
    rows = ROW.findall(DOCS.read_text())
    assert len(rows) >= 15
    defaults = Settings()
    flags = {
        (field.metadata["flag"].name or "--" + field.name.replace("_", "-")): field.name
        for field in dataclasses.fields(Settings)
        if "flag" in field.metadata
    }
    durations = {"--session-ttl": {"24h": 86400}, "--http-timeout": {"20s": 20}}
    for default, flag in rows:
        assert flag in flags, f"{flag} is not an option of chatbuddy serve"
        actual = getattr(defaults, flags[flag])
        written = default.strip()
        if flag in durations:
            assert durations[flag].get(written) == actual, f"{flag}: {written} != {actual}"
        else:
            assert written == shown(actual), f"{flag}: the docs say {written}, the code {actual}"
