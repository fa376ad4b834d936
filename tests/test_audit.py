"""The audit log: JSON lines with a fixed set of keys, never a message's text."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from chatbuddy.audit import AuditLog


def test_a_record_is_one_json_line_with_its_time_and_event() -> None:
    out = io.StringIO()
    audit = AuditLog(out)
    audit.record("message_received", session_id="s1", message_id=3, chars=12, reason=None)
    line = json.loads(out.getvalue())
    assert line["event"] == "message_received"
    assert (line["session_id"], line["message_id"], line["chars"]) == ("s1", 3, 12)
    assert "reason" not in line  # None values are left out
    assert line["ts"] > 0


def test_keys_outside_the_fixed_set_are_refused() -> None:
    audit = AuditLog(io.StringIO())
    with pytest.raises(ValueError, match="content"):
        audit.record("message_received", content="what the user wrote")


def test_an_audit_file_is_private_to_its_owner_and_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    for event in ("one", "two"):
        audit = AuditLog.open(str(path))
        audit.record(event)
        audit.close()
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["one", "two"]
    assert path.stat().st_mode & 0o077 == 0


def test_off_by_default_it_writes_nothing() -> None:
    audit = AuditLog.open(None)
    assert not audit.enabled
    audit.record("anything", session_id="s1")  # no error, no output
