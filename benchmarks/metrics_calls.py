"""The metric calls one echo message makes, N times: their cost alone, under callgrind.

    valgrind --tool=callgrind python -m benchmarks.metrics_calls 1000
    valgrind --tool=callgrind python -m benchmarks.metrics_calls 11000
    (the same two with --none: NO_METRICS instead of PrometheusMetrics)

The difference of the two counts over 10,000 is the instructions per message;
with and without --none, what the Prometheus metrics add (docs/performance.md).
"""

from __future__ import annotations

import sys
import time

from chatbuddy.metrics import NO_METRICS, Metrics
from chatbuddy.metrics.prometheus import PrometheusMetrics


def main(argv: list[str]) -> None:
    calls = int(argv[0])
    metrics: Metrics = (
        NO_METRICS
        if "--none" in argv
        else PrometheusMetrics(engine="memory", node="bench", ready=lambda: True)
    )
    for _ in range(calls):  # what the server reports for one echo message
        turn = time.perf_counter()
        metrics.message_received("websocket")
        metrics.reply_sent("echo", "echo", time.perf_counter() - turn)


if __name__ == "__main__":
    main(sys.argv[1:])
