"""`chatbuddy serve` as users run it: a real process, real signals, real errors."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

# setup.py maps cli/ to chatbuddy.cli; mypy checks that folder as "cli".
from chatbuddy.cli.main import cli  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.client.launcher import ServerProcess, launch_server
from tests.helpers import TIMEOUT, ChatClient


@dataclass
class Running:
    """A `chatbuddy serve` process and the files its banner and its log go to."""

    server: ServerProcess
    banner: Path
    log: Path

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Send ``signum``; the exit code and everything logged to stderr."""
        code = await asyncio.to_thread(self.server.stop, signum, TIMEOUT)
        return code, self.log.read_text()


def start_server(folder: Path, *args: str) -> Running:
    banner, log = folder / "stdout.txt", folder / "stderr.txt"
    server = launch_server(
        *args,
        env={**os.environ, "CHATBUDDY_LOG_LEVEL": "info", "XDG_DATA_HOME": str(folder / "data")},
        timeout=4 * TIMEOUT,
        stdout=banner.open("w"),
        stderr=log.open("w"),
    )
    return Running(server, banner, log)


async def test_serve_answers_a_price_question_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path)
    assert f"serving on http://127.0.0.1:{server.port}/" in server.banner.read_text()
    client = await ChatClient.open(server.port, "cli-session", user_id="anna")
    token = (await client.greeting())["session_token"]
    reply = await client.chat("cli-session", "Mennyi az ára a Samsung Galaxy S24-nek?")
    assert "349\u202f990\u202fFt" in reply["content"]

    code, log = await server.stop(signal.SIGTERM)
    assert code == 0
    assert await client.closed() == 1001  # told the server is going away
    assert "open conn_" in log
    assert "session=cli-session" in log
    assert "close conn_" in log
    # Neither the token nor what the user said is ever logged.
    assert token not in log
    assert "Samsung" not in log
    assert "Traceback" not in log


async def test_ctrl_c_stops_the_server_cleanly(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--agent", "echo")
    code, log = await server.stop(signal.SIGINT)
    assert code == 0
    assert "Traceback" not in log


async def test_a_port_in_use_is_a_one_line_error_with_its_own_exit_code() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chatbuddy", "serve", "--port", str(port),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 2 * TIMEOUT)
    assert process.returncode == 3
    message = stderr.decode().strip()
    assert message == (
        f"Error: 127.0.0.1:{port} is already in use; stop the other server or choose another --port"
    )


def test_help_explains_every_option_with_its_environment_variable() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for option, envvar in [
        ("--host", "CHATBUDDY_HOST"),
        ("--port", "CHATBUDDY_PORT"),
        ("--agent", "CHATBUDDY_AGENT"),
        ("--session-ttl", "CHATBUDDY_SESSION_TTL"),
        ("--history-limit", "CHATBUDDY_HISTORY_LIMIT"),
    ]:
        assert option in result.output
        assert envvar in result.output
    assert "Examples:" in result.output


def test_version_prints_the_package_version() -> None:
    from chatbuddy import __version__

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["serve", "--session-ttl", "soon"], "expected a duration like 90s, 30m, 24h or 7d"),
        (["serve", "--port", "70000"], "70000 is not in the range"),
        (["serve", "--agent", "gpt"], "'gpt' is not one of"),
    ],
)
def test_bad_options_are_usage_errors_that_name_the_value(args: list[str], complaint: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert complaint in result.output
    assert "Traceback" not in result.output


def test_settings_come_from_the_environment_too() -> None:
    result = CliRunner().invoke(cli, ["serve"], env={"CHATBUDDY_PORT": "not-a-port"})
    assert result.exit_code == 2
    assert "'not-a-port' is not a valid integer" in result.output


async def test_the_ready_file_says_where_the_server_listens() -> None:
    server = launch_server("--agent", "echo")
    try:
        client = await ChatClient.open(server.port, "ready-file")
        assert (await client.greeting())["session_id"] == "ready-file"
        client.close()
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.admin_token()
    finally:
        assert server.stop() == 0


def test_every_setting_with_a_flag_is_an_option_and_its_defaults_are_the_settings() -> None:
    import dataclasses

    from chatbuddy.cli.options import settings_from  # type: ignore[import-not-found,unused-ignore]
    from chatbuddy.settings import Settings

    help_text = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200).output
    flagged = [f for f in dataclasses.fields(Settings) if "flag" in f.metadata]
    assert len(flagged) >= 12
    for field in flagged:
        assert f"CHATBUDDY_{field.name.upper()}" in help_text
    # Parsing no options at all gives exactly the defaults Settings declares.
    command = cli.commands["serve"]
    context = command.make_context("serve", [])
    assert settings_from(dict(context.params)) == Settings()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--store", "memory", "--redis-url", "redis://127.0.0.1:1"],
            "Error: --redis-url and --store exclude each other: with Redis, sessions are kept "
            "in Redis; give one of them",
        ),
        (
            ["--retention", "1h"],
            "Error: --retention is shorter than --session-ttl: live sessions would lose their "
            "transcripts; make it at least as long, or keep",
        ),
        (["--store", "disk"], "Error: --store must be sqlite, sqlite:PATH or memory, got 'disk'"),
    ],
    ids=["redis-and-store", "retention-under-ttl", "unknown-store"],
)
def test_storage_settings_that_cannot_work_are_one_line_and_exit_code_3(
    args: list[str], line: str
) -> None:
    result = CliRunner().invoke(cli, ["serve", "--port", "0", *args])
    assert result.exit_code == 3
    assert result.output.strip() == line


def test_the_banner_says_where_conversations_are_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(tmp_path, "--agent", "echo", "--retention", "keep")
    try:
        banner = server.banner.read_text()
    finally:
        server.server.stop()
    file = data / "chatbuddy" / "chatbuddy.db"
    assert f"Conversations are kept in {file}; transcripts are kept until erased" in banner
    assert file.exists()
