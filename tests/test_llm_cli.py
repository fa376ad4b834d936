"""`chatbuddy serve --agent llm` as users run it: its options, its one-line refusals, its key."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

# setup.py maps cli/ to chatbuddy.cli; mypy checks that folder as "cli".
from chatbuddy.cli.main import cli  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.cli.serve import llm_api_key  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.client.launcher import launch_server
from tests.fake_model import FakeModel, say
from tests.helpers import TIMEOUT, ChatClient
from tests.processes import serve_env


def test_serve_llm_without_a_model_says_so_in_one_line_and_exits_3() -> None:
    result = CliRunner().invoke(cli, ["serve", "--agent", "llm", "--port", "0"], env={})
    assert result.exit_code == 3
    assert result.output.strip().splitlines() == [
        "Error: --agent llm needs a model: --llm-model NAME (or CHATBUDDY_LLM_MODEL), "
        "e.g. gpt-4o-mini, or llama3.1 with Ollama"
    ]


def test_serve_llm_with_workers_and_no_model_says_so_in_one_line(tmp_path: Path) -> None:
    args = ["--agent", "llm", "--workers", "2", "--redis-url", "redis://127.0.0.1:1"]
    done = subprocess.run(
        [sys.executable, "-m", "chatbuddy", "serve", *args, "--port", "0"],
        env=serve_env(tmp_path / "runtime"),
        capture_output=True,
        text=True,
        timeout=4 * TIMEOUT,
    )
    assert done.returncode == 3
    assert "Error: --agent llm needs a model" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_llm_without_the_sdk_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai now fails
    result = CliRunner().invoke(
        cli, ["serve", "--agent", "llm", "--llm-model", "m", "--port", "0"], env={}
    )
    assert result.exit_code == 3
    assert "pip install 'chatbuddy[llm]'" in result.output
    assert "Traceback" not in result.output


def test_the_key_is_no_option_and_comes_from_the_environment() -> None:
    help_text = CliRunner().invoke(cli, ["serve", "--help"]).output
    assert "--llm-model" in help_text
    assert "CHATBUDDY_LLM_BASE_URL" in help_text
    assert "--llm-api-key" not in help_text
    refused = CliRunner().invoke(cli, ["serve", "--llm-api-key", "sk-x"])
    assert refused.exit_code == 2
    assert llm_api_key({"OPENAI_API_KEY": "sk-b"}) == "sk-b"
    assert llm_api_key({"CHATBUDDY_LLM_API_KEY": "sk-a", "OPENAI_API_KEY": "sk-b"}) == "sk-a"
    assert llm_api_key({"OPENAI_API_KEY": "  "}) is None


def test_an_unknown_fallback_is_refused_by_name() -> None:
    result = CliRunner().invoke(cli, ["serve", "--llm-fallback", "echo"])
    assert result.exit_code == 2
    assert "coordinator" in result.output


async def test_a_real_serve_process_answers_with_the_model_and_never_prints_the_key(
    tmp_path: Path,
) -> None:
    fake = FakeModel()
    await fake.start()
    key = "sk-proc-9f8e7d6c5b4a-secret"
    fake.answer(say("Szia! Miben segíthetek?"))
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    server = launch_server(
        "--agent",
        "llm",
        "--llm-model",
        "fake-model",
        "--llm-base-url",
        fake.url,
        env={**os.environ, "OPENAI_API_KEY": key, "CHATBUDDY_LOG_LEVEL": "debug"},
        timeout=4 * TIMEOUT,
        stdout=out.open("w"),
        stderr=err.open("w"),
    )
    try:
        client = await ChatClient.open(server.port, "proc")
        await client.greeting()
        reply = await client.chat("proc", "Szia!")
        assert reply["content"] == "Szia! Miben segíthetek?"
        client.close()
    finally:
        await asyncio.to_thread(server.stop, timeout=TIMEOUT)
        await fake.stop()
    assert fake.requests[0].headers["Authorization"] == f"Bearer {key}"
    logged = out.read_text() + err.read_text()
    assert "agent: llm" in logged
    assert key not in logged
