"""The load generator and `chatbuddy bench`: real closed loops against real servers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatbuddy.cli.loadgen import LoadTarget, client_frame, run_load  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.settings import Settings
from tests.builders import unlimited
from tests.helpers import TIMEOUT
from tests.processes import serve_env, start_server
from tests.redis_server import free_port


@pytest.fixture
def settings() -> Settings:
    return unlimited(port=0, agent="echo", store="memory")


def test_a_client_frame_is_masked_and_sized() -> None:
    frame = client_frame(b"hello")
    assert frame[0] == 0x81  # final text frame
    assert frame[1] == 0x80 | 5  # masked, 5 bytes
    mask, body = frame[2:6], frame[6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == b"hello"
    assert client_frame(b"x" * 300)[1] == 0x80 | 126


async def test_closed_loops_against_chatbuddy_measure_replies(port: int) -> None:
    result = await run_load(
        LoadTarget(f"http://127.0.0.1:{port}"), connections=3, duration=0.3, warmup=0.1
    )
    assert result.replies > 10
    assert result.errors == 0
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
    assert result.rate == pytest.approx(result.replies / result.seconds)


#: serve's flags that let one address send as fast as a benchmark does.
NO_RATE_LIMITS = (
    "--rate-limit", "0", "--session-rate-limit", "0", "--ip-rate-limit", "0",
    "--frame-rate-limit", "0",
)  # fmt: skip


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatbuddy", "bench", *args],
        capture_output=True,
        text=True,
        timeout=4 * TIMEOUT,
        env=env,
    )


def test_the_bench_command_prints_a_table(tmp_path: Path) -> None:
    server = start_server(serve_env(tmp_path), "--agent", "echo", *NO_RATE_LIMITS)
    try:
        result = bench("--url", server.url, "-c", "2", "-d", "0.3", "--warmup", "0.1", "--json")
        assert result.returncode == 0, result.stderr
        figures = json.loads(result.stdout)
        assert figures["connections"] == 2
        assert figures["replies"] > 0
        table = bench(
            "--url", server.url, "-c", "1", "-d", "0.2", env={**server.env, "COLUMNS": "120"}
        )
        assert "replies/s" in table.stdout
    finally:
        server.stop()


async def test_bench_stops_at_the_first_rate_limit_refusal_and_says_how_to_measure(
    tmp_path: Path,
) -> None:
    env = serve_env(tmp_path, CHATBUDDY_ADMIN_TOKEN="bench-admin")
    server = start_server(env, "--agent", "echo")  # the default limits
    try:
        started = time.perf_counter()
        result = await asyncio.to_thread(
            bench, "--url", server.url, "-c", "4", "-d", "60", "--json", env=server.env
        )
        took = time.perf_counter() - started
        assert result.returncode == 1, result.stderr
        assert "rate limits refused the load (too many" in result.stderr
        assert "--rate-limit 0 --session-rate-limit 0" in result.stderr
        assert took < 30  # not the 60 s asked for: it stopped once refused
        figures = json.loads(result.stdout)
        assert figures["rate_limited"] >= 1
        stats = await server.stats("bench-admin")
        # The flood stopped: each loop stops at its first refusal, so the server sent
        # few refusals (about one per connection), not thousands.
        assert 1 <= stats["counters"]["errors_sent"] <= 4 * 4
    finally:
        server.stop()


def test_bench_refused_new_sessions_stops_and_says_how_to_measure(tmp_path: Path) -> None:
    server = start_server(serve_env(tmp_path), "--agent", "echo", "--new-sessions-per-minute", "5")
    try:
        result = bench("--url", server.url, "-c", "8", "-d", "60", env=server.env)
        assert result.returncode == 1, result.stderr
        assert "refused new connections (too many new sessions" in result.stderr
        assert "--new-sessions-per-minute 0" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        server.stop()


def test_bench_against_nothing_is_exit_code_4() -> None:
    port = free_port()
    result = bench("--url", f"http://127.0.0.1:{port}", "-d", "0.2")
    assert result.returncode == 4
    assert "is `chatbuddy serve` running?" in result.stderr


def test_the_generator_checks_the_servers_accept_key_as_rfc_6455_says() -> None:
    from chatbuddy.cli.loadgen import accept_of  # type: ignore[import-not-found,unused-ignore]

    # The example of RFC 6455, section 1.3.
    assert accept_of("dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
