"""``/docs``, ``/openapi.json`` and ``/asyncapi.json``: the API documented, offline.

``/docs`` is Swagger UI rendering ``/openapi.json``. Its assets come from the
``swagger-ui-bundle`` package and are served from here (no CDN); the page is
started by ``static/docs.js`` (no inline script) under the page's own
Content-Security-Policy. There is no ``/redoc``: ReDoc's renderer injects its
styles inline, which that policy forbids (docs/operations.md).
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from swagger_ui_bundle import swagger_ui_path

from chatbuddy.web.http import JsonHandler, PageHandler

#: The files of Swagger UI the page loads; nothing else of the package is served.
SWAGGER_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")


def swagger_path() -> str:
    """Where the swagger-ui-bundle package keeps Swagger UI's files."""
    return str(swagger_ui_path)


class DocumentHandler(JsonHandler):
    """A JSON document made once at start (the OpenAPI or the AsyncAPI one)."""

    def initialize(self, document: dict[str, Any]) -> None:
        # Serialized once: it only changes with the code.
        self._body = json.dumps(document, ensure_ascii=False)

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-cache")

    def get(self) -> None:
        self.finish(self._body)


class DocsPageHandler(PageHandler):
    """``/docs``: the page (``static/docs.html``), with the chat page's headers."""

    def parse_url_path(self, url_path: str) -> str:
        return "docs.html"


class SwaggerAssetHandler(PageHandler):
    """``/docs/assets/{file}``: Swagger UI's script and stylesheet, with the page's headers."""

    def parse_url_path(self, url_path: str) -> str:
        if url_path not in SWAGGER_ASSETS:
            raise tornado.web.HTTPError(404)
        return super().parse_url_path(url_path)
