"""Plain HTTP: JSON bodies and errors, health and readiness, the page, the access log."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from types import TracebackType
from typing import Any

import tornado.httputil
import tornado.web

from chatbuddy.engine import Engine

access_log = logging.getLogger("chatbuddy.access")
app_log = logging.getLogger("chatbuddy.web")


def json_error(
    handler: tornado.web.RequestHandler, status: int, error_type: str, message: str
) -> None:
    """Finish ``handler`` with the one error body every endpoint uses:
    ``{"error": {"type": ..., "message": ...}}``."""
    handler.clear_header("Content-Type")
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json; charset=utf-8")
    handler.finish(json.dumps({"error": {"type": error_type, "message": message}}))


def reason_of(handler: tornado.web.RequestHandler, error: dict[str, Any]) -> str:
    """The message of an HTTPError as it was raised: Tornado's status line keeps only
    Latin-1 reasons ("Unknown" for "Szőke Anna"), the JSON body keeps it whole."""
    exc_info = error.get("exc_info")
    raised = exc_info[1] if exc_info is not None else None
    if isinstance(raised, tornado.web.HTTPError) and raised.reason:
        return str(raised.reason)
    return str(handler._reason)


def error_type_of(status: int) -> str:
    """``not_found`` for 404 and so on: the error type of a plain HTTP error."""
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


class QuietErrors:
    """Logs an unexpected error with the request's method and path only.

    Tornado's own log line quotes the whole request, query string included, and
    query strings carry session tokens.
    """

    request: tornado.httputil.HTTPServerRequest

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        where = f"{self.request.method} {self.request.path}"
        if isinstance(value, tornado.web.HTTPError):
            if value.log_message:
                access_log.warning("%d %s: %s", value.status_code, where, value.log_message)
            return
        name = typ.__name__ if typ is not None else "error"
        if value is None:
            app_log.error("uncaught %s in %s", name, where)
        else:
            app_log.error("uncaught %s in %s", name, where, exc_info=value)


class JsonHandler(QuietErrors, tornado.web.RequestHandler):
    """Base for API handlers: JSON bodies, JSON errors, never a traceback."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    def write_json(self, document: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(document, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Tornado's default page would include a traceback in debug mode; ours never does.
        json_error(self, status_code, error_type_of(status_code), reason_of(self, kwargs))


class HealthHandler(JsonHandler):
    """``GET /healthz``: the process is up and serving."""

    def get(self) -> None:
        self.write_json({"status": "ok"})


class ReadyHandler(JsonHandler):
    """``GET /readyz``: whether this node can serve chats now (its engine is reachable)."""

    def initialize(self, engine: Engine) -> None:
        # Asked whether its store and bus can serve.
        self._engine = engine

    def get(self) -> None:
        engine = self._engine
        if engine.ready():
            self.write_json({"status": "ready", "engine": engine.name})
        else:
            self.write_json({"status": "not ready", "engine": engine.name}, status=503)


class NotFoundHandler(JsonHandler):
    """Every unknown path: a JSON 404."""

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


#: What the page (and the widget's frame) may load: its own scripts, styles and
#: socket, nothing inline, nothing from elsewhere. Who may frame it is added per page.
PAGE_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'none'"
)


class PageHandler(QuietErrors, tornado.web.StaticFileHandler):
    """The browser page and its assets, with headers that keep it to itself.

    No site may frame the page (a framing site could overlay it and make its
    visitor chat); the widget's frame is served by ``web.widget`` with exactly
    the allowed origins instead. URLs here are not versioned, so browsers
    revalidate (ETag) rather than keep a stale module after an upgrade.
    """

    def parse_url_path(self, url_path: str) -> str:
        # A NUL cannot name a file; the file system calls would raise on it (a 500).
        if "\x00" in url_path:
            raise tornado.web.HTTPError(404)
        return super().parse_url_path(url_path)

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", PAGE_POLICY + "; frame-ancestors 'none'")
        self.set_header("X-Frame-Options", "DENY")  # for browsers without frame-ancestors
        self.set_header("Cache-Control", "no-cache")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        json_error(self, status_code, error_type_of(status_code), reason_of(self, kwargs))

    def get_content_type(self) -> str:
        # Browsers run a module script (and, with nosniff, any script) only when
        # it is served as JavaScript. Tornado asks `mimetypes`, which reads the
        # host's tables; on some hosts (the Windows registry) .js is text/plain.
        if self.absolute_path is not None and self.absolute_path.endswith(".js"):
            return "text/javascript"
        return super().get_content_type()


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log without query strings: they carry session tokens."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING
    if status >= 500 and status != 503:  # 503 is /readyz saying "not yet", not a fault
        level = logging.ERROR
    access_log.log(
        level,
        "%d %s %s %.1fms",
        status,
        handler.request.method,
        handler.request.path,
        1000.0 * handler.request.request_time(),
    )
