"""The audit log: JSON lines with a fixed set of keys, never a message's text."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from chatbuddy.audit import AuditLog
from chatbuddy.server import Server
from chatbuddy.settings import Settings
from tests.builders import unlimited
from tests.conftest import ADMIN_TOKEN, Connect, Http
from tests.helpers import eventually, refused


def test_a_record_is_one_json_line_with_its_time_and_event() -> None:
    out = io.StringIO()
    audit = AuditLog(out)
    audit.record("message_received", session_id="s1", message_id=3, chars=12, reason=None)
    line = json.loads(out.getvalue())
    assert line["event"] == "message_received"
    assert (line["session_id"], line["message_id"], line["chars"]) == ("s1", 3, 12)
    assert "reason" not in line  # None values are left out
    assert line["ts"] > 0


def test_every_value_is_valid_json_and_a_line_is_plain_ascii() -> None:
    out = io.StringIO()
    AuditLog(out).record(
        "handshake_refused", reason='quote" back\\ \n\u202e é', resumed=False, ms=1.5, count=0
    )
    line = out.getvalue()
    assert line.isascii()
    assert line.count("\n") == 1
    document = json.loads(line)
    assert document["reason"] == 'quote" back\\ \n\u202e é'
    assert (document["resumed"], document["ms"], document["count"]) == (False, 1.5, 0)


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


# -- what a running server records ----------------------------------------------


class Trail:
    """The audit file of the test server, read as it grows."""

    def __init__(self, path: Path, server: Server) -> None:
        self.path, self.server = path, server

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        self.server.audit.flush()
        lines = [json.loads(line) for line in self.path.read_text().splitlines()]
        return [line for line in lines if event is None or line["event"] == event]

    async def record(self, event: str) -> dict[str, Any]:
        """The first record of ``event``, once it is written."""
        await eventually(lambda: bool(self.records(event)), f"an audit record {event!r}")
        return self.records(event)[0]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return unlimited(
        port=0,
        admin_token=ADMIN_TOKEN,
        audit_log=str(tmp_path / "audit.jsonl"),
        rate_limit=1,
        rate_burst=2,
    )


@pytest.fixture
def trail(tmp_path: Path, server: Server) -> Trail:
    return Trail(tmp_path / "audit.jsonl", server)


SECRET_TEXT = "my card number is 4111 1111 1111 1111"


async def test_a_conversation_is_recorded_with_ids_sizes_and_timings_never_text(
    connect: Connect, trail: Trail
) -> None:
    client = await connect("audited", user_id="anna")
    token = (await client.greeting())["session_token"]
    reply = await client.chat("audited", SECRET_TEXT)
    client.close()

    opened = await trail.record("connection_opened")
    assert opened["session_id"] == "audited"
    assert (opened["user_id"], opened["ip"], opened["resumed"]) == ("anna", "127.0.0.1", False)
    received = await trail.record("message_received")
    assert (received["session_id"], received["chars"]) == ("audited", len(SECRET_TEXT))
    answered = await trail.record("message_answered")
    assert answered["message_id"] == reply["message_id"]
    assert answered["chars"] == len(reply["content"])
    assert answered["ms"] >= 0
    assert answered["agent"] == "coordinator"
    closed = await trail.record("connection_closed")
    assert closed["connection_id"] == opened["connection_id"]
    text = trail.path.read_text()
    assert "4111" not in text
    assert token not in text


async def test_a_refused_handshake_is_recorded_with_its_reason(
    connect: Connect, port: int, trail: Trail
) -> None:
    owner = await connect("taken")
    await owner.greeting()
    await refused(port, "taken", session_token="guessed-token")
    refusal = await trail.record("handshake_refused")
    assert refusal == {
        **refusal,
        "session_id": "taken",
        "status": 403,
        "reason": "session_access_denied",
    }
    assert "guessed-token" not in trail.path.read_text()


async def test_a_rate_limit_hit_is_recorded(connect: Connect, trail: Trail) -> None:
    client = await connect("hasty")
    await client.greeting()
    for n in range(4):  # the limit is 1 a second, in bursts of 2
        await client.send(type="chat_message", session_id="hasty", content=f"hi {n}")
    refused_frame = await trail.record("frame_refused")
    assert refused_frame["error_type"] == "rate_limited"
    assert refused_frame["ip"] == "127.0.0.1"


async def test_an_admin_request_without_the_token_is_recorded(http: Http, trail: Trail) -> None:
    await http.fetch("/api/v1/websocket/stats?token=leaked", headers={"Authorization": "Bearer x"})
    refusal = await trail.record("admin_refused")
    assert refusal["reason"] == "wrong_token"
    assert refusal["admin"] == "/api/v1/websocket/stats"  # the path; never the query
    assert "leaked" not in trail.path.read_text()
