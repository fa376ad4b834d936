"""Data-protection requests end to end: `chatbuddy sessions export` and `delete` against
a running `chatbuddy serve` on its default SQLite file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import TIMEOUT, ChatClient
from tests.processes import LiveServer, serve_env, start_server


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatbuddy", *args],
        capture_output=True,
        text=True,
        env={**server.env, "CHATBUDDY_URL": server.url},
        timeout=4 * TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


async def run(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, server, *args)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def on_disk(folder: Path) -> bytes:
    """Every file of the default SQLite store (database, WAL, lock)."""
    return b"".join(path.read_bytes() for path in (folder / "chatbuddy").iterdir())


async def test_export_and_erase_through_the_cli_against_a_running_server(tmp_path: Path) -> None:
    env = serve_env(tmp_path)
    audit = tmp_path / "audit.jsonl"
    server = start_server(env, "--agent", "echo", "--audit-log", str(audit))
    try:
        tabs = {}
        for sid, user in (("anna-1", "anna"), ("anna-2", "anna"), ("bob-1", "bob")):
            tab = await ChatClient.open(server.port, sid, user_id=user)
            await tab.greeting()
            await tab.chat(sid, f"{user}-private-{sid}")
            tabs[sid] = tab

        exported = await run(server, "sessions", "export", "-o", str(tmp_path / "all.jsonl"))
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout == ""
        assert "Exported 3 sessions to" in exported.stderr
        lines = [json.loads(line) for line in read(tmp_path / "all.jsonl").splitlines()]
        assert sorted(line["session"]["session_id"] for line in lines) == [
            "anna-1", "anna-2", "bob-1",
        ]  # fmt: skip
        assert all(len(line["messages"]) == 2 for line in lines)
        assert "token_hash" not in json.dumps(lines)

        as_csv = await run(server, "sessions", "export", "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
        assert len(rows) == 6
        assert {row["content"] for row in rows if row["role"] == "user"} == {
            "anna-private-anna-1", "anna-private-anna-2", "bob-private-bob-1",
        }  # fmt: skip
        later = await run(server, "sessions", "export", "--since", "2999-01-01")
        assert (later.stdout, later.returncode) == ("", 0)
        assert "Exported 0 sessions." in later.stderr

        unconfirmed = await run(server, "sessions", "delete", "--user", "anna")
        assert unconfirmed.returncode == 2
        assert "pass --yes" in unconfirmed.stderr
        erased = await run(server, "sessions", "delete", "--user", "anna", "--yes")
        assert erased.returncode == 0, erased.stderr
        assert "Erased 2 sessions of user anna: anna-1, anna-2." in erased.stdout
        # The customer's open tabs are closed with the documented code, bob's is not.
        assert await tabs["anna-1"].closed() == 4003
        assert await tabs["anna-2"].closed() == 4003
        assert (await tabs["bob-1"].chat("bob-1", "still here"))["content"] == "still here"

        assert (await run(server, "sessions", "show", "anna-1")).returncode == 6
        assert (await run(server, "sessions", "delete", "anna-1", "--yes")).returncode == 6
        left = await run(server, "sessions", "export")
        assert [json.loads(line)["session"]["session_id"] for line in left.stdout.splitlines()] == [
            "bob-1"
        ]
        one = await run(server, "sessions", "delete", "bob-1", "--yes", "--json")
        assert json.loads(one.stdout) == {"erased": ["bob-1"], "close_code": 4003}
        assert b"anna-private" not in on_disk(tmp_path / "data")
    finally:
        server.stop()

    records = [json.loads(line) for line in read(audit).splitlines()]
    erasures = [r for r in records if r["event"] == "session_erased"]
    assert [(r["session_id"], r.get("user_id")) for r in erasures] == [
        ("anna-1", "anna"), ("anna-2", "anna"), ("bob-1", None),
    ]  # fmt: skip
    assert [r["count"] for r in records if r["event"] == "sessions_exported"] == [3, 3, 0, 1]
    assert "private" not in read(audit)


async def test_sessions_all_pages_through_every_session(tmp_path: Path) -> None:
    server = start_server(serve_env(tmp_path), "--agent", "echo")
    try:
        for n in range(5):
            tab = await ChatClient.open(server.port, f"page-{n}")
            await tab.greeting()
            tab.close()
        listed = await run(server, "sessions", "--all", "--json", "--limit", "2")
        assert listed.returncode == 0, listed.stderr
        ids = [json.loads(line)["session_id"] for line in listed.stdout.splitlines()]
        assert sorted(ids) == [f"page-{n}" for n in range(5)]
    finally:
        server.stop()
