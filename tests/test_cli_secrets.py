"""Secrets stay off the command line: token files, stdin, and the stale token file."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TIMEOUT
from tests.processes import LiveServer, serve_env, start_server
from tests.redis_server import free_port

ADMIN_TOKEN = "operators-own-secret-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose admin token came from a file, never from its command line."""
    folder = tmp_path_factory.mktemp("secrets")
    secret = folder / "admin.token"
    secret.write_text(ADMIN_TOKEN + "\n")
    secret.chmod(0o600)
    live = start_server(serve_env(folder / "runtime"), "--admin-token-file", str(secret))
    yield live
    live.stop()


def cli(
    server: LiveServer, *args: str, stdin: str | None = None, runtime: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `chatbuddy ARGS` as another shell would: by default with no token file to
    find (an empty runtime folder), so only what the test passes can get in."""
    env = {**server.env, "CHATBUDDY_URL": server.url}
    if runtime is not None:
        env["CHATBUDDY_RUNTIME_DIR"] = str(runtime)
    return subprocess.run(
        [sys.executable, "-m", "chatbuddy", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=4 * TIMEOUT,
    )


def private_file(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "token.txt"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_server_takes_its_admin_token_from_a_file_and_not_its_command_line(
    server: LiveServer,
) -> None:
    assert ADMIN_TOKEN not in Path(f"/proc/{server.process.pid}/cmdline").read_text()
    result = cli(server, "stats", "--json", "--token", ADMIN_TOKEN, runtime=Path("/nonexistent"))
    assert result.returncode == 0, result.stderr


def test_a_command_reads_the_admin_token_from_a_file(server: LiveServer, tmp_path: Path) -> None:
    path = private_file(tmp_path, ADMIN_TOKEN + "\n")
    result = cli(server, "stats", "--json", "--token-file", str(path), runtime=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # a private file: no warning


def test_a_command_reads_the_admin_token_from_stdin(server: LiveServer, tmp_path: Path) -> None:
    result = cli(
        server, "sessions", "--token-file", "-", stdin=ADMIN_TOKEN + "\n", runtime=tmp_path
    )
    assert result.returncode == 0, result.stderr


def test_a_token_file_others_can_read_gets_a_warning(server: LiveServer, tmp_path: Path) -> None:
    path = private_file(tmp_path, ADMIN_TOKEN, mode=0o644)
    result = cli(server, "stats", "--json", "--token-file", str(path), runtime=tmp_path)
    assert result.returncode == 0
    assert f"chmod 600 {path}" in result.stderr


@pytest.mark.parametrize(
    ("contents", "complaint"), [("\n", "holds no secret"), (None, "cannot read")]
)
def test_an_empty_or_missing_token_file_is_a_usage_error(
    server: LiveServer, tmp_path: Path, contents: str | None, complaint: str
) -> None:
    path = private_file(tmp_path, contents) if contents is not None else tmp_path / "none"
    result = cli(server, "stats", "--token-file", str(path), runtime=tmp_path)
    assert result.returncode == 2
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr


def test_a_secret_given_both_ways_is_refused(server: LiveServer, tmp_path: Path) -> None:
    path = private_file(tmp_path, ADMIN_TOKEN)
    result = cli(server, "stats", "--token", "x", "--token-file", str(path), runtime=tmp_path)
    assert result.returncode == 2
    assert "not both" in result.stderr


def test_a_token_variable_ending_in_a_line_break_works(server: LiveServer, tmp_path: Path) -> None:
    # As `CHATBUDDY_ADMIN_TOKEN` arrives from an env file or a secrets store.
    server_env = {**server.env, "CHATBUDDY_ADMIN_TOKEN": ADMIN_TOKEN + "\n"}
    result = cli(LiveServer(server.url, server.port, server_env, server.process), "stats",
                 "--json", runtime=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("token", ["two words", "line\nbreak", "tab\there", "  ", "abc€def"])
def test_a_token_with_blanks_inside_is_a_usage_error_not_a_traceback(
    server: LiveServer, tmp_path: Path, token: str
) -> None:
    result = cli(server, "stats", "--token", token, runtime=tmp_path)
    assert result.returncode == 2
    assert "expected one word of ASCII letters" in result.stderr
    assert "Traceback" not in result.stderr


def test_send_reads_the_session_token_from_a_file(server: LiveServer, tmp_path: Path) -> None:
    first = cli(server, "send", "--session", "secret-keeper", "Szia!")
    assert first.returncode == 0, first.stderr
    token = first.stderr.split("--session-token ")[1].split()[0]
    path = private_file(tmp_path, token)
    again = cli(
        server, "send", "--session", "secret-keeper", "--session-token-file", str(path), "Köszi"
    )
    assert again.returncode == 0, again.stderr
    assert "(resumed)" in again.stderr


def test_every_secret_option_says_how_to_keep_it_out_of_ps() -> None:
    for command, option in (
        ("serve", "--admin-token-file"),
        ("stats", "--token-file"),
        ("send", "--session-token-file"),
    ):
        # 4 x TIMEOUT: a Python start on a loaded machine, not an event
        result = subprocess.run(
            [sys.executable, "-m", "chatbuddy", command, "--help"],
            capture_output=True, text=True, timeout=4 * TIMEOUT,
        )  # fmt: skip
        assert option in result.stdout
        assert "`ps`" in result.stdout


def test_a_token_file_left_by_a_killed_server_is_replaced_at_the_next_start(
    tmp_path: Path,
) -> None:
    env = serve_env(tmp_path)
    port = free_port()
    killed = start_server(env, port=port)
    killed.stop(signal.SIGKILL)  # no chance to remove its token file
    stale_path = tmp_path / f"admin-{port}.token"
    stale = stale_path.read_text().strip()

    fresh = start_server(env, port=port)
    try:
        assert stale_path.read_text().strip() != stale
        result = subprocess.run(
            [sys.executable, "-m", "chatbuddy", "stats", "--json", "--url", fresh.url],
            capture_output=True, text=True, env=env, timeout=4 * TIMEOUT,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    finally:
        fresh.stop()
    assert not stale_path.exists()  # a clean stop removes it


def test_a_secret_file_longer_than_the_limit_is_refused_not_cut(
    server: LiveServer, tmp_path: Path
) -> None:
    path = private_file(tmp_path, "x" * 20_000 + "\n")
    result = cli(server, "send", "--identity-file", str(path), "hello", runtime=tmp_path)
    assert result.returncode == 2
    assert "longer than 16384 characters" in result.stderr
