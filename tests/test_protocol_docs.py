"""docs/protocol.md is checked against the models: every example parses, nothing is missing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from chatbuddy.errors import ErrorType
from chatbuddy.wire.client_frames import CLIENT_MESSAGE_TYPES, parse_client_message
from chatbuddy.wire.server_frames import ServerMessage, parse_server_message

DOC = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC, flags=re.S)]


def _server_types() -> set[str]:
    union = get_args(ServerMessage)[0]
    return {model.model_fields["type"].default for model in get_args(union)}


def _messages() -> list[dict[str, Any]]:
    return [e for e in EXAMPLES if "type" in e]


@pytest.mark.parametrize("example", _messages(), ids=lambda e: e["type"])
def test_every_example_message_is_valid_under_the_models(example: dict[str, Any]) -> None:
    frame = json.dumps(example)
    if "data" in example:
        assert parse_server_message(frame).type == example["type"]
    else:
        assert parse_client_message(frame).type == example["type"]


def test_every_message_type_has_an_example() -> None:
    client = {e["type"] for e in _messages() if "data" not in e}
    server = {e["type"] for e in _messages() if "data" in e}
    assert client == set(CLIENT_MESSAGE_TYPES)
    assert server == _server_types()


def test_every_error_type_is_explained() -> None:
    for error_type in ErrorType:
        assert f"| `{error_type.value}` |" in DOC


ADMIN_DOC = (Path(__file__).parent.parent / "docs" / "admin.md").read_text(encoding="utf-8")


def test_every_admin_event_type_has_a_valid_example() -> None:
    from chatbuddy.wire.events import EVENT_TYPES, parse_event

    blocks = re.findall(r"```json\n(.*?)```", ADMIN_DOC, flags=re.S)
    assert {parse_event(block).type for block in blocks} == set(EVENT_TYPES)


def test_the_close_code_table_is_the_one_the_server_uses() -> None:
    from chatbuddy.wire.close_codes import Close, retry

    rows = re.findall(r"^\| (\d{4}) \| [^|]+\| [^|]+\| (retry|terminal) \|$", DOC, flags=re.M)
    assert {int(code) for code, _ in rows} == {int(code) for code in Close}
    for code, advice in rows:
        assert retry(int(code)) == (advice == "retry"), code
