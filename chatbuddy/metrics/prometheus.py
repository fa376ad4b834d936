"""The metrics kept for Prometheus, with the official client library.

The only module that imports ``prometheus_client``. Every metric lives in a
registry of this object's own (never the library's global one), so two
servers in one process (the tests) keep apart. Label values are few: agents,
routes, reasons, error types and close codes come from small fixed sets, and
anything else a plug-in might make up is counted as ``other``
(:data:`MAX_LABEL_VALUES`); never a session, user or connection id.

Several worker processes (``serve --workers``): the parent makes one empty
folder for them (:func:`shared_folder`, ``PROMETHEUS_MULTIPROC_DIR``) before it
forks; each worker's values then go to files there, and
:meth:`PrometheusMetrics.exposition` in any worker merges every process's
(docs/operations.md). The parent tells :func:`process_gone` of a worker that
exited, so its connections stop counting. Only plain counters, gauges and
histograms are used, as that mode requires; each gauge says how processes
combine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

#: Where the library keeps every process's values in multiprocess mode.
FOLDER_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

#: Seconds, for replies: an echo takes a millisecond, a language model up to a minute.
REPLY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: Seconds, for one call of the engine (a Redis round trip is well under a millisecond).
ENGINE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2)
#: Most distinct values one label may take; later ones are counted as "other".
MAX_LABEL_VALUES = 50
#: The write-buffer high-water mark covers this many seconds (two windows of it).
HIGH_WATER_WINDOW = 60.0
#: Close codes counted by their number; any other a client sends is "other".
KNOWN_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
    | set(range(4000, 4010))
)


M = TypeVar("M", Counter, Histogram)


class _Labels(Generic[M]):
    """A metric's children by label values, at most MAX_LABEL_VALUES of them."""

    def __init__(self, metric: M) -> None:
        # The labelled metric whose children these are.
        self._metric: M = metric
        # label values -> child, looked up without the library's lock.
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            if len(self._children) >= MAX_LABEL_VALUES:
                values = tuple("other" for _ in values)
            child = self._children.get(values) or self._metric.labels(*values)
            self._children[values] = child
        return child


class PrometheusMetrics:
    """Implements :class:`chatbuddy.metrics.Metrics` with Prometheus metrics.

    ``engine`` and ``node`` label the connections gauge and the engine's calls;
    ``ready`` tells, when scraped, whether the engine can serve.
    """

    def __init__(self, *, engine: str, node: str, ready: Callable[[], bool]) -> None:
        # Whether values go to PROMETHEUS_MULTIPROC_DIR files, merged when scraped.
        self.multiprocess = bool(os.environ.get(FOLDER_VARIABLE))
        if self.multiprocess and values.ValueClass is values.MutexValue:
            # The library picks file-backed values when it is imported; a worker forked
            # from a parent that imported it before making the folder picks them now.
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        # Every metric below; scraped by exposition().
        self.registry = registry = CollectorRegistry(auto_describe=True)
        if not self.multiprocess:  # CPU, memory, open files (the library's; per process)
            ProcessCollector(registry=registry)
        # Asked when scraped.
        self._ready = ready
        self._connections = Gauge(
            "chatbuddy_connections",
            "Chat WebSocket connections open on this node.",
            ["engine", "node"],
            registry=registry,
            multiprocess_mode="livesum",
        ).labels(engine, node)
        self._engine_ready = Gauge(
            "chatbuddy_engine_ready",
            "1 while the engine (its store and bus) can serve, 0 while it cannot.",
            ["engine"],
            registry=registry,
            multiprocess_mode="livemin",
        ).labels(engine)
        self._handshakes_refused = _Labels(
            Counter(
                "chatbuddy_handshakes_refused",
                "Chat handshakes (and HTTP chat requests) refused admission, by reason.",
                ["reason"],
                registry=registry,
            )
        )
        self._connections_refused = _Labels(
            Counter(
                "chatbuddy_connections_refused",
                "TCP connections refused as they were accepted (a connection cap), by reason.",
                ["reason"],
                registry=registry,
            )
        )
        received = Counter(
            "chatbuddy_messages_received",
            "Chat messages accepted for a reply, by transport (websocket, http).",
            ["transport"],
            registry=registry,
        )
        self._received = {name: received.labels(name) for name in ("websocket", "http")}
        self._replies = _Labels(
            Counter(
                "chatbuddy_replies",
                "Replies stored and sent, by agent and by the sub-agent (route) that answered.",
                ["agent", "route"],
                registry=registry,
            )
        )
        self._reply_seconds = _Labels(
            Histogram(
                "chatbuddy_reply_seconds",
                "Time from a message's turn to its reply stored and sent, by agent.",
                ["agent"],
                registry=registry,
                buckets=REPLY_BUCKETS,
            )
        )
        self._first_chunk_seconds = _Labels(
            Histogram(
                "chatbuddy_reply_first_chunk_seconds",
                "Time from a message's turn to its reply's first chunk (streamed replies).",
                ["agent"],
                registry=registry,
                buckets=REPLY_BUCKETS,
            )
        )
        self._errors = _Labels(
            Counter(
                "chatbuddy_errors",
                "Errors told to chat clients, by error_type.",
                ["type"],
                registry=registry,
            )
        )
        self._rate_limited = _Labels(
            Counter(
                "chatbuddy_rate_limited",
                "Frames refused by a rate limit, by limit "
                "(connection, session, address, frames, queue).",
                ["limit"],
                registry=registry,
            )
        )
        self._disconnects = _Labels(
            Counter(
                "chatbuddy_disconnects",
                "Chat sockets closed, by close code and by who closed (server, client).",
                ["code", "by"],
                registry=registry,
            )
        )
        self._high_water = Gauge(
            "chatbuddy_write_buffer_high_water_bytes",
            "Most bytes that waited to be sent to one chat socket in the last 1-2 minutes.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        # The high-water marks of this window and the one before, and when this one began.
        self._window_peak = 0
        self._previous_peak = 0
        self._window_start = time.monotonic()
        self._engine_seconds = _Labels(
            Histogram(
                "chatbuddy_engine_seconds",
                "Time of one call of the engine's store or bus, by operation.",
                ["engine", "operation"],
                registry=registry,
                buckets=ENGINE_BUCKETS,
            )
        )
        self._engine_failures = _Labels(
            Counter(
                "chatbuddy_engine_failures",
                "Calls of the engine that failed because its backend could not be reached.",
                ["engine", "operation"],
                registry=registry,
            )
        )
        # The engine's name, for the engine metrics' label.
        self._engine = engine
        self._llm_requests = _Labels(
            Counter(
                "chatbuddy_llm_requests",
                "Requests to a language model, by model and outcome.",
                ["model", "outcome"],
                registry=registry,
            )
        )
        self._llm_seconds = _Labels(
            Histogram(
                "chatbuddy_llm_request_seconds",
                "Time of one request to a language model, by model.",
                ["model"],
                registry=registry,
                buckets=REPLY_BUCKETS,
            )
        )
        self._llm_first_token = _Labels(
            Histogram(
                "chatbuddy_llm_first_token_seconds",
                "Time from a request to a language model to its first token, by model.",
                ["model"],
                registry=registry,
                buckets=REPLY_BUCKETS,
            )
        )
        self._llm_tokens = _Labels(
            Counter(
                "chatbuddy_llm_tokens",
                "Tokens used by language model requests, by model and kind (prompt, completion).",
                ["model", "kind"],
                registry=registry,
            )
        )

    # -- exposition -------------------------------------------------------------

    #: The Content-Type of exposition().
    content_type = CONTENT_TYPE_LATEST

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (all processes', in multiprocess mode)."""
        self.refresh()
        if self.multiprocess:
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)

    def refresh(self) -> None:
        """Bring the values that are looked at, not counted, up to date."""
        self._engine_ready.set(1 if self._ready() else 0)
        self._roll_window(time.monotonic())
        self._high_water.set(max(self._window_peak, self._previous_peak))

    def _roll_window(self, now: float) -> None:
        elapsed = now - self._window_start
        if elapsed < HIGH_WATER_WINDOW:
            return
        self._previous_peak = self._window_peak if elapsed < 2 * HIGH_WATER_WINDOW else 0
        self._window_peak = 0
        self._window_start = now

    # -- ChatMetrics --------------------------------------------------------------

    def message_received(self, transport: str) -> None:
        self._received[transport].inc()

    def reply_sent(self, agent: str, route: str, seconds: float) -> None:
        self._replies(agent, route).inc()
        self._reply_seconds(agent).observe(seconds)

    def first_chunk(self, agent: str, seconds: float) -> None:
        self._first_chunk_seconds(agent).observe(seconds)

    def error_sent(self, error_type: str) -> None:
        self._errors(error_type).inc()

    def rate_limited(self, limit: str) -> None:
        self._rate_limited(limit).inc()

    # -- SocketMetrics ------------------------------------------------------------

    def connection_opened(self) -> None:
        self._connections.inc()

    def connection_closed(self, code: int | None, *, by_server: bool) -> None:
        self._connections.dec()
        shown = "none" if code is None else str(code) if code in KNOWN_CLOSE_CODES else "other"
        self._disconnects(shown, "server" if by_server else "client").inc()

    def handshake_refused(self, reason: str) -> None:
        self._handshakes_refused(reason).inc()

    def connection_refused(self, reason: str) -> None:
        self._connections_refused(reason).inc()

    def write_queued(self, size: int) -> None:
        if size <= self._window_peak:
            return
        self._roll_window(time.monotonic())
        if size > self._window_peak:
            self._window_peak = size
            self._high_water.set(max(size, self._previous_peak))

    # -- EngineMetrics ------------------------------------------------------------

    def engine_call(self, operation: str, seconds: float, *, failed: bool) -> None:
        self._engine_seconds(self._engine, operation).observe(seconds)
        if failed:
            self._engine_failures(self._engine, operation).inc()

    # -- LlmMetrics ---------------------------------------------------------------

    def llm_request(
        self,
        *,
        model: str,
        outcome: str,
        seconds: float,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        first_token_seconds: float | None = None,
    ) -> None:
        self._llm_requests(model, outcome).inc()
        self._llm_seconds(model).observe(seconds)
        if first_token_seconds is not None:
            self._llm_first_token(model).observe(first_token_seconds)
        if prompt_tokens:
            self._llm_tokens(model, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self._llm_tokens(model, "completion").inc(completion_tokens)


@contextlib.contextmanager
def shared_folder() -> Iterator[str]:
    """For the parent of worker processes, around their lives: the folder their values
    go to. One given in PROMETHEUS_MULTIPROC_DIR is used as it is (the operator empties
    it); otherwise a new one is made, named in the environment the workers inherit, and
    removed at the end."""
    given = os.environ.get(FOLDER_VARIABLE)
    if given:
        yield given
        return
    folder = tempfile.mkdtemp(prefix="chatbuddy-metrics-")
    os.environ[FOLDER_VARIABLE] = folder
    try:
        yield folder
    finally:
        os.environ.pop(FOLDER_VARIABLE, None)
        shutil.rmtree(folder, ignore_errors=True)


def process_gone(pid: int) -> None:
    """A worker exited: its gauges (connections, readiness, high-water) stop counting;
    its counters and histograms stay, as totals do."""
    if os.environ.get(FOLDER_VARIABLE):
        mark_process_dead(pid)  # type: ignore[no-untyped-call]
