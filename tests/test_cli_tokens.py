"""`chatbuddy tokens` makes, lists and revokes role tokens; the admin commands work
with them as far as their role goes. Real `chatbuddy` processes, a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TIMEOUT
from tests.processes import LiveServer, serve_env, start_server


def chatbuddy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatbuddy", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=4 * TIMEOUT,
    )


def add(path: Path, name: str, role: str) -> str:
    result = chatbuddy("tokens", "add", name, "--role", role, "--file", str(path))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_add_prints_the_token_alone_and_keeps_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    result = chatbuddy("tokens", "add", "grafana", "--role", "stats", "--file", str(path))
    assert result.returncode == 0
    token = result.stdout.strip()
    assert len(token) == 43
    assert "only time it is shown" in result.stderr
    assert token not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600


def test_list_shows_names_roles_and_dates_never_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    tokens = [add(path, "grafana", "stats"), add(path, "anna", "operator")]
    table = chatbuddy("tokens", "list", "--file", str(path))
    assert table.returncode == 0
    for shown in ("grafana", "stats", "anna", "operator"):
        assert shown in table.stdout
    rows = [json.loads(line) for line in chatbuddy("tokens", "list", "--file", str(path), "--json")
            .stdout.splitlines()]  # fmt: skip
    assert [(row["name"], row["role"]) for row in rows] == [
        ("grafana", "stats"),
        ("anna", "operator"),
    ]
    for token in tokens:
        assert token not in table.stdout


def test_revoke_removes_a_token_and_an_unknown_name_is_exit_code_6(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    add(path, "grafana", "stats")
    assert chatbuddy("tokens", "revoke", "grafana", "--file", str(path)).returncode == 0
    assert "grafana" not in path.read_text()
    again = chatbuddy("tokens", "revoke", "grafana", "--file", str(path))
    assert again.returncode == 6
    assert "no token named 'grafana'" in again.stderr


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["add", "grafana", "--role", "root"], 2, "'root' is not one of"),
        (["add", "two words", "--role", "stats"], 3, "token name 'two words'"),
        (["add", "grafana", "--role", "stats"], 3, "a token named 'grafana' exists"),
    ],
    ids=["unknown-role", "bad-name", "taken-name"],
)
def test_mistakes_are_one_line_with_an_exit_code(
    tmp_path: Path, args: list[str], code: int, said: str
) -> None:
    path = tmp_path / "tokens"
    add(path, "grafana", "stats")
    result = chatbuddy("tokens", *args, "--file", str(path))
    assert result.returncode == code
    assert said in result.stderr
    assert "Traceback" not in result.stderr


def test_tokens_explains_itself() -> None:
    result = chatbuddy("tokens", "--help")
    assert result.returncode == 0
    assert "Examples:" in result.stdout
    assert "stats < viewer < operator < admin" in result.stdout


@pytest.fixture(scope="module")
def roles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path, Path]]:
    """A server with a tokens file; token files for a stats and a viewer token."""
    folder = tmp_path_factory.mktemp("roles")
    book = folder / "tokens"
    token_files = []
    for name, role in (("grafana", "stats"), ("vera", "viewer")):
        token_file = folder / f"{name}.token"
        token_file.write_text(add(book, name, role) + "\n")
        token_file.chmod(0o600)
        token_files.append(token_file)
    live = start_server(serve_env(folder / "runtime"), "--admin-tokens-file", str(book))
    yield live, token_files[0], token_files[1]
    live.stop()


def test_stats_with_a_monitoring_token_shows_the_totals_without_sessions(
    roles: tuple[LiveServer, Path, Path],
) -> None:
    server, stats_token, viewer_token = roles
    base = ["--url", server.url, "--token-file"]
    monitoring = chatbuddy("stats", *base, str(stats_token), env=server.env)
    assert monitoring.returncode == 0, monitoring.stderr
    assert "ChatBuddy" in monitoring.stdout
    assert "Sessions" not in monitoring.stdout
    viewing = chatbuddy("stats", *base, str(viewer_token), env=server.env)
    assert "Sessions" in viewing.stdout


def test_a_command_beyond_the_tokens_role_says_which_role_it_needs(
    roles: tuple[LiveServer, Path, Path],
) -> None:
    server, stats_token, _ = roles
    result = chatbuddy(
        "sessions", "--url", server.url, "--token-file", str(stats_token), env=server.env
    )
    assert result.returncode == 5
    assert "needs the role 'viewer' or higher; the token 'grafana' has 'stats'" in result.stderr
