"""docs/llm.md against the code: every tool's schema, every llm option with its default."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from chatbuddy.agents.llm.tools import TOOLS, Tool
from chatbuddy.settings import Settings

DOC = (Path(__file__).resolve().parent.parent / "docs" / "llm.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("tool", TOOLS, ids=[t.name for t in TOOLS])
def test_every_tools_schema_on_the_page_is_the_one_generated_from_its_model(tool: Tool) -> None:
    name = tool.name
    found = re.search(rf"### `{name}`\n\n(.*?)\n\n```json\n(.*?)```", DOC, flags=re.S)
    assert found is not None, f"docs/llm.md has no section for {name}"
    model = tool.arguments
    assert found.group(1) == " ".join((model.__doc__ or "").split())
    assert json.loads(found.group(2)) == model.model_json_schema()


def test_every_llm_option_is_documented_with_its_default() -> None:
    for field in dataclasses.fields(Settings):
        if not field.name.startswith("llm_") or "flag" not in field.metadata:
            continue
        flag = "--" + field.name.replace("_", "-")
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{flag}`")), None)
        assert row is not None, f"docs/llm.md does not list {flag}"
        assert f"CHATBUDDY_{field.name.upper()}" in row
        default = field.default
        if isinstance(default, int) and not isinstance(default, bool):
            assert f"| {default} |" in row, f"{flag}: the default {default} is not on the page"
    assert "--llm-api-key" not in DOC
