"""What `send`, `bench`, `shop check` and `tokens` print: latencies, load results,
a shop file's summary, the admin tokens.
"""

from __future__ import annotations

import statistics
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from chatbuddy.admin_tokens import TokenEntry

from .loadgen import LoadResult
from .render import (
    clean,
    safe,
)

# -- send ----------------------------------------------------------------------


def latency_summary(latencies: list[float], failures: int) -> dict[str, Any]:
    """Round-trip times in ms: count, min, median, p90, max (None without replies)."""
    ms = sorted(1000 * t for t in latencies)
    figures: dict[str, float | None] = dict.fromkeys(("min_ms", "median_ms", "p90_ms", "max_ms"))
    if ms:
        figures = {
            "min_ms": round(ms[0], 2),
            "median_ms": round(statistics.median(ms), 2),
            "p90_ms": round(ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))], 2),
            "max_ms": round(ms[-1], 2),
        }
    return {"sent": len(ms) + failures, "ok": len(ms), "failed": failures, **figures}


def latency_table(latencies: list[float], failures: int) -> Table:
    """Round-trip times in ms: count, min, median, p90, max."""
    table = Table(title="Round trips", box=box.SIMPLE_HEAVY)
    for column in ("sent", "ok", "failed", "min", "median", "p90", "max"):
        table.add_column(column, justify="right")
    summary = latency_summary(latencies, failures)
    figures = [
        "-" if summary[key] is None else f"{summary[key]:.1f}"
        for key in ("min_ms", "median_ms", "p90_ms", "max_ms")
    ]
    table.add_row(str(summary["sent"]), str(summary["ok"]), str(summary["failed"]), *figures)
    return table


def result_table(result: LoadResult, url: str) -> Table:
    """`chatbuddy bench`'s result."""
    table = Table(title=f"chatbuddy bench {url}", box=box.SIMPLE_HEAVY)
    for column in (
        "connections",
        "replies/s",
        "replies",
        "errors",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        str(result.connections),
        f"{result.rate:,.0f}",
        f"{result.replies:,}",
        str(result.errors),
        f"{result.p50_ms:.2f}",
        f"{result.p90_ms:.2f}",
        f"{result.p99_ms:.2f}",
        f"{result.max_ms:.2f}",
    )
    return table


# -- shop files ----------------------------------------------------------------


def shop_summary_table(summary: dict[str, Any]) -> Group:
    """A shop file's summary (``chatbuddy shop check``): its categories, then its totals."""
    table = Table(
        title=f"{clean(summary['name'])} ({summary['language']}, {summary['currency']})",
        box=box.SIMPLE_HEAVY,
    )
    table.add_column("category")
    table.add_column("hu")
    table.add_column("en")
    table.add_column("products", justify="right")
    table.add_column("in stock", justify="right")
    for c in summary["categories"]:
        table.add_row(
            safe(c["key"]), safe(c["hu"]), safe(c["en"]), str(c["products"]), str(c["in_stock"])
        )
    totals = Table(box=box.SIMPLE, show_header=False)
    totals.add_column("what", style="bold")
    totals.add_column("value")
    totals.add_row("products", f"{summary['products']} ({summary['aliases']} aliases)")
    totals.add_row("orders", str(summary["orders"]))
    totals.add_row("coupons", safe(", ".join(summary["coupons"]) or "-"))
    totals.add_row("policies", safe(", ".join(summary["policies"]) or "-"))
    return Group(table, totals, Text("The shop file is valid.", style="green"))


def tokens_table(entries: list[TokenEntry]) -> Table:
    """The admin tokens of a tokens file: name, role, when made (never a token or hash)."""
    table = Table(title=f"Admin tokens ({len(entries)})", box=box.SIMPLE_HEAVY)
    for column in ("name", "role", "created"):
        table.add_column(column)
    for entry in entries:
        table.add_row(entry.name, entry.role.label, entry.created)
    return table
