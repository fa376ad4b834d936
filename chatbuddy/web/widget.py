"""The embeddable widget: the loader a shop's page includes, the frame it opens, their caching.

A shop adds ``<script src="https://CHAT_HOST/widget.js" defer></script>``. That
loader (``static/widget.js``) asks ``/widget/config`` whether the page's origin
is allowed, and if so opens the chat in a frame of this server,
``/static/v/{version}/widget.html``, which only the allowed origins may frame
(``frame-ancestors``). The frame runs the same modules as the page, from the
same folder. docs/widget.md says why a frame, and what it means for security.

Caching: ``/widget.js`` keeps its URL forever (shops paste it), so it is cached
for five minutes; everything under ``/static/v/{version}/`` is named by the
static folder's content, so it is cached for a year, except the frame's HTML,
which is revalidated so that a change of the allowed origins applies at once.
A URL of another version redirects to the current one, so a loader or config
cached across an upgrade still gets one consistent set of files.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import tornado.web

from chatbuddy.web.http import PAGE_POLICY, JsonHandler, PageHandler, json_error

log = logging.getLogger("chatbuddy.connections")

#: The frame's page in the static folder.
FRAME = "widget.html"
#: How long a browser keeps ``/widget.js`` before it asks again.
LOADER_MAX_AGE = 300
#: The static folder is flat: a versioned URL names one file in it.
_FLAT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")

#: Why a shop's page was refused the widget, and what its operator can do.
WIDGET_REFUSAL = "not allowed with --allowed-origin (or CHATBUDDY_ALLOWED_ORIGINS)"


def asset_version(folder: str | Path) -> str:
    """Twelve hex digits that change whenever any file in ``folder`` changes."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def frame_policy(allowed_origins: tuple[str, ...]) -> str:
    """The frame's Content-Security-Policy: the page's, framed by exactly these origins."""
    ancestors = " ".join(allowed_origins) or "'none'"
    return f"{PAGE_POLICY}; frame-ancestors {ancestors}"


class WidgetScriptHandler(PageHandler):
    """``GET /widget.js``: the loader. Public, like any script a page includes:
    readable cross-origin (CORS, and CORP for shops that set COEP), so a shop
    may load it with ``crossorigin``."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", f"public, max-age={LOADER_MAX_AGE}")
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Cross-Origin-Resource-Policy", "cross-origin")


class VersionedAssetHandler(PageHandler):
    """``GET /static/v/{version}/{file}``: the widget's frame and the modules it runs."""

    def initialize(  # type: ignore[override]
        self, path: str, version: str, allowed_origins: tuple[str, ...]
    ) -> None:
        super().initialize(path)
        # This process's version of the static folder (asset_version()).
        self._version = version
        # The frame's policy: only these origins may frame it.
        self._frame_policy = frame_policy(allowed_origins)

    async def get(self, version: str, path: str, include_body: bool = True) -> None:  # type: ignore[override]
        if not _FLAT_NAME.fullmatch(path):
            raise tornado.web.HTTPError(404)
        if version != self._version:
            self.set_header("Cache-Control", "no-store")
            self.redirect(f"/static/v/{self._version}/{path}")
            return
        await super().get(path, include_body)

    def head(self, version: str, path: str) -> Any:  # type: ignore[override]
        return self.get(version, path, include_body=False)

    def set_extra_headers(self, path: str) -> None:
        if path == FRAME:
            self.set_header("Content-Security-Policy", self._frame_policy)
            self.clear_header("X-Frame-Options")  # frame-ancestors says who may
            self.set_header("Cache-Control", "no-cache")
        else:
            self.set_header("Cache-Control", "public, max-age=31536000, immutable")


class WidgetConfigHandler(JsonHandler):
    """``GET /widget/config``: whether the asking page's origin may embed the chat,
    and where the frame is. Any origin may read the answer (it says only that)."""

    def initialize(self, allowed_origins: tuple[str, ...], frame: str) -> None:
        # The shops' origins, normalised as browsers send them (settings.parse_origins).
        self._allowed_origins = allowed_origins
        # The current version's frame URL (a path on this server).
        self._frame = frame

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Vary", "Origin")
        origin = self.request.headers.get("Origin")
        if origin is not None:
            self.set_header("Access-Control-Allow-Origin", origin)

    def get(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin is None or origin.lower() not in self._allowed_origins:
            log.warning("widget refused for origin %r: %s", (origin or "")[:200], WIDGET_REFUSAL)
            json_error(
                self,
                403,
                "origin_not_allowed",
                f"a page of {origin!r} may not embed ChatBuddy: start the server with "
                f"--allowed-origin {origin} (or add it to CHATBUDDY_ALLOWED_ORIGINS)",
            )
            return
        self.set_header("Cache-Control", f"private, max-age={LOADER_MAX_AGE}")
        self.write_json({"frame": self._frame})
