"""CPU instructions per chat message, counted by valgrind: a figure load cannot bend.

On a shared machine, replies per second move with whatever else runs; the
instructions a server executes per message do not. This runs `chatbuddy
serve` under callgrind twice, sends N1 and then N2 messages through it (ten
connections, each waiting for its reply), and prints the difference per
message: start-up and connection set-up cancel out. Only the server's user-space
instructions count (not the kernel's socket work, and not the client's).

    python -m benchmarks.instructions                     # echo, 200 vs 1,200 messages
    python -m benchmarks.instructions --agent coordinator --message "Mennyi az ára a PS5-nek?"
    python -m benchmarks.instructions --command /other/checkout/.venv/bin/chatbuddy   # A/B
    python -m benchmarks.instructions --limits-checked      # what checking the limits costs
    python -m benchmarks.instructions --audit               # what the audit log costs

Needs valgrind (apt-get install valgrind); a run takes a few minutes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from benchmarks.servers import CHATBUDDY_CHANGED_SETTINGS, UNREACHED
from chatbuddy.client.chat import ChatSocket

#: Connections the messages are spread over.
CONNECTIONS = 10
#: Seconds the server may take to start under valgrind (it runs ~50x slower).
START_TIMEOUT = 600.0


async def chat(url: str, messages: int, text: str) -> None:
    """Send ``messages`` in all over CONNECTIONS connections, each waiting for its reply."""

    async def one(number: int) -> None:
        socket = await ChatSocket.connect(url, f"instr-{number}-{time.time_ns()}", timeout=600)
        session = (await socket.greeting())["session_id"]
        for _ in range(messages // CONNECTIONS):
            answer = await socket.ask(session, text)
            if answer.error is not None:
                raise click.ClickException(f"the server refused a message: {answer.error}")
        socket.close()

    await asyncio.gather(*(one(n) for n in range(CONNECTIONS)))


def counted(command: list[str], options: list[str], messages: int, text: str, folder: Path) -> int:
    """Instructions the server executed, start to stop, having answered ``messages``."""
    ready, out = folder / f"ready-{messages}.json", folder / f"callgrind-{messages}.out"
    args = ["serve", "--port", "0", "--log-level", "warning", *options]
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command, *args,
         "--ready-file", str(ready)],
        env={**os.environ, "CHATBUDDY_RUNTIME_DIR": str(folder), "XDG_DATA_HOME": str(folder)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise click.ClickException("the server did not start under valgrind")
            time.sleep(0.5)  # polling a process that starts slowly; bounded by the deadline
        port = json.loads(ready.read_text())["port"]
        asyncio.run(chat(f"http://127.0.0.1:{port}", messages, text))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(START_TIMEOUT)
    match = re.search(r"^summary:\s+(\d+)", out.read_text(errors="replace"), re.MULTILINE)
    if match is None:
        raise click.ClickException(f"no instruction count in {out}")
    return int(match.group(1))


@click.command()
@click.option("--agent", default="echo", show_default=True, help="The agent that answers.")
@click.option("--message", default="hello", show_default=True, help="The chat text sent.")
@click.option(
    "--store",
    type=click.Choice(["memory", "sqlite"]),
    default="memory",
    show_default=True,
    help="Where the server keeps sessions (sqlite: a file in a temporary folder).",
)
@click.option("--audit", is_flag=True, help="With the audit log on (to a temporary file).")
@click.option("--no-metrics", is_flag=True, help="With the Prometheus metrics off.")
@click.option(
    "--limits-checked",
    is_flag=True,
    help="Rate and connection limits on but too high to refuse (what checking costs).",
)
@click.option("--n1", default=200, show_default=True, help="Messages in the first run.")
@click.option("--n2", default=1200, show_default=True, help="Messages in the second run.")
@click.option(
    "--command",
    "executable",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Another install's `chatbuddy` (default: this one's, as `python -m chatbuddy`).",
)
def main(
    agent: str,
    message: str,
    store: str,
    audit: bool,
    no_metrics: bool,
    limits_checked: bool,
    n1: int,
    n2: int,
    executable: Path | None,
) -> None:
    """Print the instructions the server executes per chat message."""
    if shutil.which("valgrind") is None:
        raise click.ClickException("valgrind is not installed (apt-get install valgrind)")
    if n2 <= n1:
        raise click.UsageError("--n2 must be larger than --n1")
    command = [str(executable)] if executable else [sys.executable, "-m", "chatbuddy"]
    with tempfile.TemporaryDirectory(prefix="chatbuddy-instr-") as tmp:
        options = ["--agent", agent, "--store", store]
        for setting in CHATBUDDY_CHANGED_SETTINGS:
            options += [setting.flag, UNREACHED if limits_checked else setting.value]
        if audit:
            options += ["--audit-log", str(Path(tmp) / "audit.jsonl")]
        if no_metrics:
            options += ["--no-metrics"]
        first = counted(command, options, n1, message, Path(tmp))
        second = counted(command, options, n2, message, Path(tmp))
    per_message = (second - first) / (n2 - n1)
    what = " ".join(
        [
            agent,
            store,
            *(["audit"] if audit else []),
            *(["no-metrics"] if no_metrics else []),
            *(["limits"] if limits_checked else []),
        ]
    )
    click.echo(f"{what}: {per_message:,.0f} instructions per chat message ({n1} vs {n2})")


if __name__ == "__main__":
    main()
