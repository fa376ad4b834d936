"""Ids and chat text: what is accepted and how it is stored."""

from __future__ import annotations

import pytest

from chatbuddy.text import is_valid_id, new_connection_id, normalize_text
from chatbuddy.tokens import new_token


@pytest.mark.parametrize("value", ["a", "session_123", "user.name:42-x", "A" * 128])
def test_well_formed_ids_are_accepted(value: str) -> None:
    assert is_valid_id(value)


@pytest.mark.parametrize(
    "value", ["", "A" * 129, "has space", "sess\n", "ünnep", "a/b", "a?b", "<script>"]
)
def test_malformed_ids_are_refused(value: str) -> None:
    assert not is_valid_id(value)


def test_text_is_composed_to_nfc() -> None:
    assert normalize_text("e\u0301") == "\u00e9"


def test_control_characters_are_removed_but_newline_and_tab_stay() -> None:
    assert normalize_text("a\x00b\x1b[31mc\x7f\x85d\r\n\te") == "ab[31mcd\n\te"


def test_markup_and_sql_words_are_kept_as_written() -> None:
    text = "<b>SELECT</b> * FROM orders; -- DROP TABLE"
    assert normalize_text(text) == text


def test_tokens_and_connection_ids_are_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 43 and is_valid_id(t.replace("-", "_")) for t in tokens)
    assert new_connection_id() != new_connection_id()
