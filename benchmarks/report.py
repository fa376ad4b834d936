"""Medians of the rounds, and the tables that show them (pure functions of the JSON)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from benchmarks.scenarios import BASELINE, BY_KEY

Run = dict[str, Any]


def _median(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(statistics.median(values), 3) if values else None


def _cores(run: Run, role: str) -> float:
    """Cores ``role`` used; "server" also counts its workers ("server.worker1", ...)."""
    cpu = run.get("cpu") or {}
    known = cpu.get("known_cores", {})
    return float(sum(v for k, v in known.items() if k == role or k.startswith(role + ".")))


def generator_cores(run: Run) -> float | None:
    """The client's own CPU over the window, as it measured it (process.cpuUsage)."""
    client = run.get("client")
    if not client or not client.get("window_seconds"):
        return None
    return float(client["cpu_seconds"]) / float(client["window_seconds"])


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per (kind, scenario, connections): medians over its rounds that
    did not fail (a failed run's figures, kept in the JSON, measure something
    else: fewer connections, refused messages), errors and failures over all
    rounds added up, flags gathered."""
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run["kind"], run["scenario"], run["connections"]), []).append(run)
    rows: list[dict[str, Any]] = []
    for (kind, key, connections), group in groups.items():
        measured = [run for run in group if run.get("client")]
        good = [run for run in measured if run["status"] == "ok"]
        foreign = [run["cpu"]["foreign_cores"] for run in measured if run.get("cpu")]
        row: dict[str, Any] = {
            "kind": kind,
            "scenario": key,
            "label": BY_KEY[key].label if key in BY_KEY else group[0]["label"],
            "connections": connections,
            "runs": len(group),
            "failed": sum(run["status"] == "FAILED" for run in group),
            "errors": sum(run["client"]["errors"]["total"] for run in measured),
            "generator_cores": _median(
                cores for run in good if (cores := generator_cores(run)) is not None
            ),
            "server_cores": _median(
                _cores(run, "server") + _cores(run, "redis") for run in good if run.get("cpu")
            ),
            # The two apart, for CPU per reply on the node and on Redis (docs/capacity.md).
            "node_cores": _median(_cores(run, "server") for run in good if run.get("cpu")),
            "redis_cores": _median(_cores(run, "redis") for run in good if run.get("cpu")),
            "foreign_cores": _median(foreign),
            "foreign_cores_max": max(foreign) if foreign else None,
            "flags": sorted({flag for run in group for flag in run.get("flags", [])}),
        }
        if kind == "idle":
            idle = [run["idle"] for run in good if run.get("idle")]
            row["kib_per_connection"] = _median(i["kib_per_connection"] for i in idle)
            row["rss_before_kib"] = _median(i["rss_before_kib"] for i in idle)
            row["rss_after_kib"] = _median(i["rss_after_kib"] for i in idle)
        else:
            row["rate"] = _median(run["client"]["rate"] for run in good)
            for name in ("p50", "p90", "p99", "max"):
                row[f"{name}_ms"] = _median(run["client"]["latency_ms"][name] for run in good)
            if row["rate"] and row["node_cores"] is not None:
                # CPU per reply bends less with a busy machine than replies/s do.
                row["node_us_per_reply"] = round(row["node_cores"] / row["rate"] * 1e6, 1)
                row["redis_us_per_reply"] = round(row["redis_cores"] / row["rate"] * 1e6, 1)
            if kind == "open":
                row["send_lag_p99_ms"] = _median(
                    run["client"]["send_lag_ms"]["p99"] for run in good
                )
        rows.append(row)
    _add_ratios(rows)
    return rows


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each closed-loop row's replies/s over bare Tornado's and over its
    python-socketio peer's at the same connection count."""
    rates = {
        (row["scenario"], row["connections"]): row.get("rate")
        for row in rows
        if row["kind"] == "closed"
    }
    for row in rows:
        if row["kind"] != "closed":
            continue
        # A version run with --base compares with the same peer as its original.
        scenario = BY_KEY.get(row["scenario"].removesuffix("@base"))
        peer = scenario.peer if scenario is not None else None
        for name, other in (("x_tornado", BASELINE), ("x_peer", peer)):
            base = rates.get((other, row["connections"])) if other else None
            row[name] = round(row["rate"] / base, 3) if row.get("rate") and base else None


def _number(value: float | None, form: str = "{:.2f}") -> str:
    return "–" if value is None else form.format(value)


def _ms(value: float | None) -> str:
    """Milliseconds to about three significant digits: 0.07, 6.31, 58.5, 1,772."""
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _status(row: dict[str, Any]) -> Text:
    if row["failed"]:
        return Text(f"FAILED {row['failed']}/{row['runs']}", style="bold red")
    return Text("ok", style="green")


def _foreign(row: dict[str, Any], limit: float) -> Text:
    """The median foreign load; ⚠ when any round's exceeded the limit (see the notes)."""
    text = _number(row["foreign_cores"])
    if row["foreign_cores_max"] is not None and row["foreign_cores_max"] > limit:
        return Text(f"{text} ⚠", style="yellow")
    return Text(text)


def closed_table(document: dict[str, Any]) -> Table:
    rounds = document["config"]["rounds"]
    limit = document["config"]["foreign_limit"]
    table = Table(
        title=f"Closed loop: medians of {rounds} round{'s' * (rounds != 1)}",
        box=box.SIMPLE_HEAVY,
    )
    columns = (
        "scenario", "conns", "replies/s", "× tornado", "× socketio", "p50 ms", "p99 ms",
        "max ms", "errors", "gen CPU", "srv CPU", "foreign", "status",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "scenario" else "right", no_wrap=True)
    for row in document["summary"]:
        if row["kind"] != "closed":
            continue
        table.add_row(
            row["label"], f"{row['connections']:,}", _number(row["rate"], "{:,.0f}"),
            _number(row["x_tornado"]), _number(row["x_peer"]), _ms(row["p50_ms"]),
            _ms(row["p99_ms"]), _ms(row["max_ms"]), f"{row['errors']:,}",
            _number(row["generator_cores"]), _number(row["server_cores"]),
            _foreign(row, limit), _status(row),
        )  # fmt: skip
    return table


def open_table(document: dict[str, Any]) -> Table:
    config = document["config"]
    table = Table(
        title=(
            f"Open loop: {config['open_connections']:,} connections × 1 message / "
            f"{config['open_interval']:g} s, latency per message"
        ),
        box=box.SIMPLE_HEAVY,
    )
    columns = (
        "scenario", "conns", "replies/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors",
        "lag p99", "gen CPU", "srv CPU", "foreign", "status",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "scenario" else "right", no_wrap=True)
    for row in document["summary"]:
        if row["kind"] != "open":
            continue
        table.add_row(
            row["label"], f"{row['connections']:,}", _number(row["rate"], "{:,.0f}"),
            _ms(row["p50_ms"]), _ms(row["p90_ms"]), _ms(row["p99_ms"]),
            _ms(row["max_ms"]), f"{row['errors']:,}", _ms(row["send_lag_p99_ms"]),
            _number(row["generator_cores"]), _number(row["server_cores"]),
            _foreign(row, config["foreign_limit"]), _status(row),
        )  # fmt: skip
    return table


def idle_table(document: dict[str, Any]) -> Table:
    table = Table(title="Idle connections: resident memory", box=box.SIMPLE_HEAVY)
    columns = ("server", "conns", "RSS before", "RSS after", "per connection", "errors", "status")
    for column in columns:
        table.add_column(column, justify="left" if column == "server" else "right", no_wrap=True)
    for row in document["summary"]:
        if row["kind"] != "idle":
            continue
        table.add_row(
            row["label"], f"{row['connections']:,}",
            _number(_mib(row["rss_before_kib"]), "{:.1f} MiB"),
            _number(_mib(row["rss_after_kib"]), "{:.1f} MiB"),
            _number(row["kib_per_connection"], "{:.1f} KiB"), f"{row['errors']:,}", _status(row),
        )  # fmt: skip
    return table


def _mib(kib: float | None) -> float | None:
    return None if kib is None else kib / 1024


def notes(document: dict[str, Any]) -> Text:
    """What the tables rest on: changed settings, flags, failures."""
    text = Text()
    changed = document["chatbuddy_changed_settings"]
    text.append("ChatBuddy runs with its shipped defaults except: ")
    text.append(
        "; ".join(f"{c['flag']} {c['value']} (default {c['default']}: {c['why']})" for c in changed)
        or "nothing",
    )
    text.append("\n")
    for row in document["summary"]:
        for flag in row["flags"]:
            text.append(
                f"⚠ {row['label']} {row['kind']} {row['connections']:,}: {flag}\n", "yellow"
            )
    for run in document["runs"]:
        if run["status"] == "FAILED":
            text.append(
                f"✗ round {run['round']} {run['label']} {run['kind']} {run['connections']:,}: "
                f"{'; '.join(run['problems'])}\n",
                "red",
            )
    return text


def render(document: dict[str, Any], console: Console) -> None:
    kinds = {row["kind"] for row in document["summary"]}
    parts: list[Table | Text] = []
    if "closed" in kinds:
        parts.append(closed_table(document))
    if "open" in kinds:
        parts.append(open_table(document))
    if "idle" in kinds:
        parts.append(idle_table(document))
    parts.append(notes(document))
    console.print(Group(*parts))


def markdown(document: dict[str, Any]) -> str:
    """The summary as Markdown tables, for docs/performance.md."""
    rows = document["summary"]
    out = [
        "| scenario | conns | replies/s | × Tornado | × peer | p50 ms | p99 ms | max ms "
        "| node µs/reply | Redis µs/reply | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row["kind"] != "closed":
            continue
        out.append(
            f"| {row['label']} | {row['connections']:,} | {_number(row['rate'], '{:,.0f}')} "
            f"| {_number(row['x_tornado'])} | {_number(row['x_peer'])} | {_ms(row['p50_ms'])} "
            f"| {_ms(row['p99_ms'])} | {_ms(row['max_ms'])} "
            f"| {_number(row.get('node_us_per_reply'), '{:.0f}')} "
            f"| {_number(row.get('redis_us_per_reply') or None, '{:.0f}')} | {row['errors']} |"
        )
    opened = [row for row in rows if row["kind"] == "open"]
    if opened:
        out += ["", "| open loop | conns | replies/s | p50 ms | p99 ms | max ms | errors |"]
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for row in opened:
            out.append(
                f"| {row['label']} | {row['connections']:,} | {_number(row['rate'], '{:,.0f}')} "
                f"| {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | {_ms(row['max_ms'])} "
                f"| {row['errors']} |"
            )
    idle = [row for row in rows if row["kind"] == "idle"]
    if idle:
        out += ["", "| idle | conns | KiB per connection |", "|---|---:|---:|"]
        for row in idle:
            out.append(
                f"| {row['label']} | {row['connections']:,} "
                f"| {_number(row['kib_per_connection'], '{:.1f}')} |"
            )
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # python -m benchmarks.report RESULTS.json: Markdown tables
    import json
    import sys
    from pathlib import Path

    print(markdown(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))), end="")
