"""The benchmark's independent load client measures honestly against real servers.

Needs Node.js and the client's npm packages (`npm ci --prefix
benchmarks/loadclient`); without them these tests fail, saying so, rather than
skip: a benchmark nobody can run proves nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from benchmarks import client, machine, report, servers
from benchmarks.scenarios import SCENARIOS
from chatbuddy.client.launcher import ServerProcess, launch_server
from tests.helpers import TIMEOUT

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def node_client() -> None:
    try:
        client.command()
    except client.ClientUnavailable as exc:
        pytest.fail(exc.message, pytrace=False)


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Running]:
    with servers.tornado_echo(tmp_path_factory.mktemp("echo")) as running:
        yield running


@contextlib.contextmanager
def chatbuddy(tmp_path: Path, *args: str) -> Iterator[ServerProcess]:
    env = {**os.environ, "CHATBUDDY_RUNTIME_DIR": str(tmp_path)}
    server = launch_server("--agent", "echo", *args, env=env, timeout=4 * TIMEOUT)
    try:
        yield server
    finally:
        server.stop(timeout=TIMEOUT)


def closed_loop(protocol: str, url: str, connections: int = 5) -> dict[str, Any]:
    load = client.Load(protocol, url, "closed", connections, warmup=0.2, duration=1.0)
    return client.run(load)


def test_the_client_reports_every_field_the_suite_reads(
    echo_server: servers.Running,
) -> None:
    result = closed_loop("echo", echo_server.url)
    assert result["connections"]["opened"] == 5
    assert result["connections"]["failed"] == 0
    assert set(result["latency_ms"]) == {"count", "mean", "p50", "p90", "p99", "max"}
    assert set(result["errors"]) >= {
        "total", "handshake_refused", "connect_failed", "error_frame", "closed_early",
        "timeout", "late", "unanswered",
    }  # fmt: skip
    assert result["client"]["ws"] == "8.23.0"  # the version package-lock.json pins
    assert 0 < result["cpu_seconds"] <= result["cpu_seconds_total"]


def test_a_closed_loop_against_bare_tornado_gets_replies_and_no_errors(
    echo_server: servers.Running,
) -> None:
    result = closed_loop("echo", echo_server.url)
    assert result["errors"]["total"] == 0
    assert result["messages"]["replies_in_window"] > 0
    # Every measured reply has a latency: percentiles are over all, not a sample.
    assert result["latency_ms"]["count"] == result["messages"]["replies_in_window"]
    assert result["rate"] == pytest.approx(
        result["messages"]["replies_in_window"] / result["window_seconds"], rel=0.01
    )
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    assert result["latency_ms"]["p99"] <= result["latency_ms"]["max"]


def test_a_closed_loop_against_chatbuddy_counts_only_chat_responses(tmp_path: Path) -> None:
    raised = [arg for s in servers.CHATBUDDY_CHANGED_SETTINGS for arg in (s.flag, s.value)]
    with chatbuddy(tmp_path, *raised) as server:
        result = closed_loop("chatbuddy", server.ws_url)
    assert result["errors"]["total"] == 0
    assert result["messages"]["replies_in_window"] > 0
    # One connection_established per connection was read, and not taken for a reply.
    assert result["messages"]["replies"] <= result["messages"]["sent"]


def test_error_frames_count_as_errors(tmp_path: Path) -> None:
    # At its default limit (5/s, burst 20), ChatBuddy refuses a closed loop's 21st message.
    with chatbuddy(tmp_path) as server:
        result = closed_loop("chatbuddy", server.ws_url)
    assert result["errors"]["error_frame"] > 0
    assert result["errors"]["total"] >= result["errors"]["error_frame"]
    assert result["error_types"]["rate_limited"] == result["errors"]["error_frame"]


def test_a_refused_handshake_is_an_error_not_a_connection(tmp_path: Path) -> None:
    with chatbuddy(tmp_path) as server:
        # The echo path does not exist on ChatBuddy: its upgrade is answered with 404.
        result = closed_loop("echo", server.ws_url + "/no-such-path", connections=3)
    assert result["connections"]["opened"] == 0
    assert result["errors"]["handshake_refused"] == 3


def test_an_open_loop_sends_at_its_rate_whatever_the_replies(
    echo_server: servers.Running,
) -> None:
    load = client.Load(
        "echo", echo_server.url, "open", 20, warmup=0.2, duration=1.0, interval=0.2, drain=1.0
    )
    result = client.run(load)
    assert result["errors"]["total"] == 0
    # 20 connections × one message per 0.2 s × 1 s measured.
    assert result["messages"]["sent_in_window"] == pytest.approx(100, rel=0.1)
    assert result["messages"]["replies_in_window"] == result["messages"]["sent_in_window"]
    assert result["send_lag_ms"]["count"] == result["messages"]["sent_in_window"]


def test_idle_connections_are_held_until_told_to_stop(echo_server: servers.Running) -> None:
    events: list[str] = []
    load = client.Load("echo", echo_server.url, "idle", 10)
    with client.LoadClient(load, lambda name, _pid: events.append(name)) as running:
        opened = running.wait_for("opened", 4 * TIMEOUT)
        assert opened == {"opened": 10, "failed": 0}
        result = running.result()
    assert result["errors"]["total"] == 0
    assert result["messages"]["sent"] == 0
    assert events == ["opened", "window_start", "window_end"]


def test_cpu_accounting_charges_busy_time_to_known_processes_first() -> None:
    before = machine.CpuSample(at=0.0, busy=0, irq=0, steal=0, processes={"server": 0})
    after = machine.CpuSample(
        at=2.0, busy=3 * machine.CLOCK_TICKS, irq=0, steal=0, processes={"server": 200}
    )
    account = machine.account(before, after)
    server_cores = 200 / machine.CLOCK_TICKS / 2
    assert account.busy == pytest.approx(1.5)
    assert account.known["server"] == pytest.approx(server_cores)
    assert account.foreign == pytest.approx(1.5 - server_cores)


def test_the_benchmark_suite_runs_every_scenario_with_one_command(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--rounds", "1", "--duration", "0.3",
         "--warmup", "0.1", "--connections", "2", "--open-connections", "20",
         "--open-interval", "0.2", "--open-duration", "0.4", "--idle", "50", "--out", str(out)],
        capture_output=True, text=True, timeout=30 * TIMEOUT, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    document = json.loads(out.read_text())
    rows = {(row["kind"], row["scenario"]): row for row in document["summary"]}
    assert set(rows) == {
        *(("closed", scenario.key) for scenario in SCENARIOS),
        ("open", "tornado"), ("open", "memory-echo"), ("idle", "tornado"), ("idle", "memory-echo"),
        # compression on and off, each connection idle after one reply
        ("idle", "memory-coordinator"), ("idle", "memory-coordinator-deflate"),
    }  # fmt: skip
    assert all(run["status"] == "ok" and run["cpu"] for run in document["runs"])
    assert rows["closed", "memory-echo"]["x_tornado"] > 0
    assert rows["closed", "redis-echo"]["x_peer"] > 0
    assert rows["idle", "memory-echo"]["kib_per_connection"] > 0
    compressed = rows["closed", "memory-coordinator-deflate"]["wire_bytes_per_reply"]
    assert 0 < compressed < rows["closed", "memory-coordinator"]["wire_bytes_per_reply"] / 2
    assert rows["idle", "memory-coordinator-deflate"]["primed"]
    assert [s["flag"] for s in document["chatbuddy_changed_settings"]] == [
        "--rate-limit", "--session-rate-limit", "--ip-rate-limit", "--frame-rate-limit",
        "--new-sessions-per-minute", "--max-connections-per-ip",
    ]  # fmt: skip
    assert "--rate-limit 0" in result.stdout
    assert "× tornado" in result.stdout


def fake_run(scenario: str, rate: float, *, errors: int = 0) -> dict[str, Any]:
    latency = {"count": 1, "mean": 1.0, "p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0}
    return {
        "round": 1, "kind": "closed", "scenario": scenario, "label": scenario,
        "connections": 50, "status": "FAILED" if errors else "ok",
        "problems": [f"{errors} errors"] if errors else [], "flags": [],
        "client": {
            "rate": rate, "latency_ms": latency, "errors": {"total": errors},
            "cpu_seconds": 1.0, "window_seconds": 5.0,
        },
        "cpu": {"known_cores": {"server": 1.0}, "foreign_cores": 0.5},
    }  # fmt: skip


def test_the_table_shows_ratios_and_no_figures_from_failed_runs() -> None:
    runs = [
        fake_run("tornado", 10_000),
        fake_run("socketio-memory", 5_000),
        fake_run("memory-echo", 6_000),
        fake_run("redis-echo", 9_999, errors=7),
    ]
    document = {
        "config": {"rounds": 1, "foreign_limit": 0.2},
        "chatbuddy_changed_settings": [s.as_dict() for s in servers.CHATBUDDY_CHANGED_SETTINGS],
        "summary": report.summarize(runs),
        "runs": runs,
    }
    output = io.StringIO()
    report.render(document, Console(file=output, width=160, color_system=None))
    text = output.getvalue()

    def row(label: str) -> list[str]:
        line = next(line for line in text.splitlines() if line.strip().startswith(label))
        return line.removeprefix(f"  {label}").split()

    # conns, replies/s, × tornado, × socketio (memory + echo's peer is socketio-memory)
    assert row("memory + echo")[:4] == ["50", "6,000", "0.60", "1.20"]
    assert row("redis + echo")[-2:] == ["FAILED", "1/1"]
    assert "9,999" not in text  # a failed run's figure is not a median
    assert row("tornado echo")[-3:-1] == ["0.50", "⚠"]  # foreign load over the limit
    assert "round 1 redis-echo closed 50: 7 errors" in text
    assert "--rate-limit 0" in text
