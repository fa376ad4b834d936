"""``GET /metrics``: the Prometheus text format.

On the main port it is behind the admin token (checked by
:class:`chatbuddy.web.auth.AdminAccess`, the one place that will also let a
monitoring-only token in); ``--metrics-port`` serves it without a token on
127.0.0.1 instead, for a Prometheus on the same machine.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from chatbuddy.metrics.prometheus import PrometheusMetrics
from chatbuddy.web.auth import AdminAccess, AdminAction
from chatbuddy.web.http import NotFoundHandler, QuietErrors, error_type_of, json_error, log_request


class MetricsHandler(QuietErrors, tornado.web.RequestHandler):
    """Every metric of this node (of every worker process, in multiprocess mode)."""

    def initialize(self, metrics: PrometheusMetrics, access: AdminAccess | None) -> None:
        # What is scraped.
        self._metrics = metrics
        # Checks the token; None on the metrics port, which only this machine reaches.
        self._access = access

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    def prepare(self) -> None:
        if self._access is not None:
            self._access.admit(self, action=AdminAction.READ_STATS)

    def get(self) -> None:
        self.set_header("Content-Type", self._metrics.content_type)
        self.finish(self._metrics.exposition())

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        json_error(self, status_code, error_type_of(status_code), self._reason)


def metrics_app(metrics: PrometheusMetrics) -> tornado.web.Application:
    """The metrics port's application: ``/metrics`` and nothing else."""
    return tornado.web.Application(
        [(r"/metrics", MetricsHandler, {"metrics": metrics, "access": None})],
        default_handler_class=NotFoundHandler,
        log_function=log_request,
    )
