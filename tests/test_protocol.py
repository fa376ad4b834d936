"""Parsing client frames: each kind of bad input maps to its error type."""

from __future__ import annotations

import json

import pytest

from chatbuddy.errors import ClientError, ErrorType
from chatbuddy.wire.client_frames import (
    MAX_CONTENT_CHARS,
    ChatMessage,
    HistoryRequest,
    Ping,
    SessionInfoRequest,
    parse_client_message,
)


def chat(**fields: object) -> str:
    return json.dumps({"type": "chat_message", "session_id": "s", **fields})


def error_of(frame: str | bytes) -> ClientError:
    with pytest.raises(ClientError) as caught:
        parse_client_message(frame)
    return caught.value


def test_each_client_message_type_parses_to_its_model() -> None:
    assert isinstance(parse_client_message(chat(content="hi")), ChatMessage)
    assert isinstance(parse_client_message('{"type": "ping"}'), Ping)
    assert isinstance(parse_client_message('{"type": "session_info"}'), SessionInfoRequest)
    history = parse_client_message('{"type": "history", "after": 4, "limit": 10}')
    assert isinstance(history, HistoryRequest)
    assert (history.after, history.limit) == (4, 10)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    assert isinstance(parse_client_message('{"type": "ping", "future": true}'), Ping)


def test_content_is_normalized_on_parse() -> None:
    message = parse_client_message(chat(content="e\u0301\x07"))
    assert isinstance(message, ChatMessage)
    assert message.content == "\u00e9"


def test_content_length_is_measured_after_normalization() -> None:
    # 4000 "e" + combining accent pairs compose into 4000 characters.
    message = parse_client_message(chat(content="e\u0301" * MAX_CONTENT_CHARS))
    assert isinstance(message, ChatMessage)
    assert len(message.content) == MAX_CONTENT_CHARS


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b"{}", ErrorType.UNSUPPORTED_FRAME),
        ("", ErrorType.INVALID_JSON),
        ("null", ErrorType.INVALID_JSON),
        ('{"type": "ping"', ErrorType.INVALID_JSON),
        ('{"content": "hi"}', ErrorType.MISSING_TYPE),
        ('{"type": "CHAT_MESSAGE"}', ErrorType.UNKNOWN_TYPE),
        ('{"type": "chat_message", "content": "hi"}', ErrorType.MISSING_SESSION),
        (chat(content=""), ErrorType.EMPTY_MESSAGE),
        (chat(content="x" * (MAX_CONTENT_CHARS + 1)), ErrorType.MESSAGE_TOO_LONG),
        (chat(content="hi", session_id="no spaces"), ErrorType.VALIDATION_ERROR),
        (chat(content="hi", client_message_id=5), ErrorType.VALIDATION_ERROR),
        (chat(content="hi", timestamp="x" * 65), ErrorType.VALIDATION_ERROR),
        ('{"type": "history", "after": -1}', ErrorType.VALIDATION_ERROR),
        ('{"type": "history", "limit": 201}', ErrorType.VALIDATION_ERROR),
    ],
)
def test_bad_frames_map_to_their_error_type(frame: str | bytes, expected: ErrorType) -> None:
    assert error_of(frame).error_type == expected


def test_a_validation_error_names_the_field() -> None:
    error = error_of('{"type": "history", "limit": 500}')
    assert error.request_type == "history"
    assert error.message.startswith("history.limit:")


def test_error_messages_do_not_echo_the_content() -> None:
    secret = "my card number is 4111 1111 1111 1111"
    error = error_of(chat(content=secret * 200))
    assert secret not in error.message


def test_the_fast_envelope_writes_exactly_what_the_models_would() -> None:
    from pathlib import Path
    from typing import get_args

    from chatbuddy.wire.server_frames import ServerMessage, parse_server_message

    doc = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    import re

    frames = [
        parse_server_message(block)
        for block in re.findall(r"```json\n(.*?)```", doc, flags=re.S)
        if '"data"' in block and '"type"' in block
    ]
    every_type = {m.model_fields["type"].default for m in get_args(get_args(ServerMessage)[0])}
    assert {frame.type for frame in frames} == every_type  # an example of each
    for frame in frames:
        assert frame.to_json() == frame.model_dump_json()
        assert json.loads(frame.to_json())["type"] == frame.type
