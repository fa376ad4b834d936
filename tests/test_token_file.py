"""The admin token file: private to its user, keyed by port, removed on exit."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from chatbuddy import token_file
from chatbuddy.errors import ConfigurationError
from chatbuddy.tokens import new_token, tokens_match


def test_the_token_file_is_readable_only_by_its_owner(private_runtime_dir: Path) -> None:
    path = token_file.write_token(8123, "secret-1")
    assert path == private_runtime_dir / "admin-8123.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(private_runtime_dir.stat().st_mode) == 0o700
    assert token_file.read_token(8123) == "secret-1"
    assert token_file.read_token(8124) is None


def test_a_folder_others_can_write_to_is_refused(private_runtime_dir: Path) -> None:
    private_runtime_dir.mkdir(mode=0o777)
    private_runtime_dir.chmod(0o777)
    with pytest.raises(ConfigurationError, match="not private"):
        token_file.write_token(8123, "secret")


def test_stopping_removes_only_its_own_token(private_runtime_dir: Path) -> None:
    token_file.write_token(8123, "first")
    token_file.write_token(8123, "second")  # another server took the port since
    token_file.remove_token(8123, "first")
    assert token_file.read_token(8123) == "second"
    token_file.remove_token(8123, "second")
    assert token_file.read_token(8123) is None


def test_tokens_compare_in_constant_time_and_never_match_nothing() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert not tokens_match("abc", None)
    assert not tokens_match("abc", "")
    assert new_token() != new_token()
