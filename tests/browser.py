"""What the browser tests share: Chromium, axe-core, and a shop's site to embed the widget in."""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Browser, Frame, Page, Playwright, ViewportSize, sync_playwright

from tests.helpers import TIMEOUT

#: Every browser wait, in milliseconds: a multiple of the tests' one timeout.
WAIT_MS = int(2 * TIMEOUT * 1000)
#: Phone and desktop viewports (an iPhone SE's CSS pixels; a small laptop's).
PHONE: ViewportSize = {"width": 375, "height": 667}
DESKTOP: ViewportSize = {"width": 1000, "height": 760}
#: axe-core impacts that fail a test.
FAILING_IMPACTS = ("serious", "critical")


def chromium_path() -> str:
    """Debian's Chromium (Playwright's own browser download does not work here)."""
    path = os.environ.get("CHATBUDDY_CHROMIUM") or shutil.which("chromium")
    assert path, "Chromium is needed for the browser tests: apt-get install chromium"
    return path


def launch(playwright: Playwright, *, partitioned_storage: bool = False) -> Browser:
    """Headless Chromium. Playwright turns storage partitioning off, and this
    Chromium blocks third-party cookies, so a frame of another site gets no
    storage at all (as where third-party storage is blocked);
    ``partitioned_storage`` turns it back on, as Chrome ships it: such a frame
    gets storage of its own, keyed by the top-level site. (Playwright passes
    its own ``--disable-features`` list; the last one given wins.)"""
    args = [
        "--no-sandbox",  # tests run as root here
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    if partitioned_storage:
        args.append("--disable-features=PaintHolding,MediaRouter,LensOverlay,HttpsUpgrades")
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)


@contextlib.contextmanager
def running_browser(*, partitioned_storage: bool = False) -> Iterator[Browser]:
    """A headless Chromium (see :func:`launch`) for a test module, closed after it."""
    with sync_playwright() as driver:
        browser = launch(driver, partitioned_storage=partitioned_storage)
        try:
            yield browser
        finally:
            browser.close()


def accessibility_violations(target: Page | Frame) -> list[str]:
    """axe-core's serious and critical violations in ``target``'s document, one
    line each (rule, impact, where). axe's default rules (WCAG 2.0-2.2 A and AA
    and best practices), plus label-content-name-mismatch (WCAG 2.5.3), which
    axe counts as experimental."""
    options = {"rules": {"label-content-name-mismatch": {"enabled": True}}}
    results: Any = Axe().run(target, options={"resultTypes": ["violations"], **options})
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"])
        for violation in results.response["violations"]
        if violation["impact"] in FAILING_IMPACTS
    ]


#: What a shop with a strict Content-Security-Policy of its own adds for the
#: widget (docs/widget.md quotes it; the tests serve the shop with it).
def shop_policy(chat: str) -> str:
    return (
        f"default-src 'self'; script-src 'self' {chat}; connect-src 'self' {chat}; "
        f"frame-src {chat}; style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'"
    )


#: A shop's stylesheet that would spoil anything it reached: the widget's frame keeps it out.
SHOP_CSS = """
body { font: 17px/1.5 Georgia, serif; margin: 0; background: #fffbeb; color: #1c1917; }
header, main { max-width: 52rem; margin: 0 auto; padding: 1rem; }
nav a { margin-right: 1rem; color: #9a3412; }
.products { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr)); gap: 1rem;
  list-style: none; padding: 0; }
.products li { background: #fff; border: 1px solid #e7e5e4; border-radius: 8px; padding: 1rem; }
button, li, p, textarea { letter-spacing: .2em !important; font-family: serif !important; }
"""

SHOP_PAGES = {
    "/": ("Főoldal", "Kiemelt termékek"),
    "/laptops": ("Laptopok", "Laptopok és tabletek"),
}


class ShopPage(tornado.web.RequestHandler):
    """One page of the shop, embedding the widget (or not, with ``?plain=1``)."""

    def initialize(self, site: ShopSite) -> None:
        # The site: where ChatBuddy is, and how to embed it.
        self._site = site

    def get(self) -> None:
        site = self._site
        title, heading = SHOP_PAGES[self.request.path]
        links = " ".join(f'<a href="{path}">{name}</a>' for path, (name, _) in SHOP_PAGES.items())
        products = "".join(
            f"<li><h3>{name}</h3><p>{price}</p></li>"
            for name, price in [
                ("Samsung Galaxy S24", "349 990 Ft"),
                ("Lenovo IdeaPad 5", "289 990 Ft"),
                ("Apple iPad 10.9", "164 990 Ft"),
            ]
        )
        embed = "" if self.get_query_argument("plain", None) else site.embed_tag()
        if site.raw_frame:  # a page that frames ChatBuddy itself, without the loader
            embed = f'<iframe title="Chat" src="{site.chat_url}{site.raw_frame}"></iframe>'

        self.set_header("Content-Security-Policy", shop_policy(site.chat_url))
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            f"""<!doctype html><html lang="{site.lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – Minta Bolt</title><link rel="stylesheet" href="/shop.css"></head>
<body><header><strong>Minta Bolt</strong><nav aria-label="Shop">{links}</nav></header>
<main><h1>{heading}</h1><ul class="products">{products}</ul></main>
{embed}</body></html>"""
        )


class ShopStyle(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/css")
        self.finish(SHOP_CSS)


#: The shop's own script for a signed-in customer: the widget asks it for a
#: token before each connection, and it fetches a fresh one from the shop. The
#: page's <html data-tokens-asked> counts the tokens asked for.
SIGNED_IN_JS = """let tokensAsked = 0;
ChatBuddy.identify(() => {
  tokensAsked += 1;  // counted on the page, where a test can wait for it to change
  document.documentElement.dataset.tokensAsked = String(tokensAsked);
  return fetch("/chat-token", { cache: "no-store" }).then((response) => response.text());
});
"""


class SignedInScript(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/javascript")
        self.finish(SIGNED_IN_JS)


class ChatToken(tornado.web.RequestHandler):
    """The shop's endpoint that gives its signed-in customer a token for the chat."""

    def initialize(self, site: ShopSite) -> None:
        # Issues the tokens.
        self._site = site

    def get(self) -> None:
        assert self._site.signed_in is not None
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "text/plain")
        self.finish(self._site.signed_in())


class ShopIcon(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_status(204)  # the shop has no icon; the browser asks anyway


class BackgroundSite:
    """A Tornado app of the test itself on ``127.0.0.1``, in a thread of its own
    (the browser tests are synchronous). Bind first, then serve."""

    def __init__(self) -> None:
        # The listening socket, bound now so that the port is known.
        self._sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        #: Where it listens.
        self.port: int = self._sockets[0].getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, app: tornado.web.Application) -> None:
        started = threading.Event()

        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            server = tornado.httpserver.HTTPServer(app)
            server.add_sockets(self._sockets)
            started.set()
            await self._stop.wait()
            server.stop()
            await server.close_all_connections()

        self._thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
        self._thread.start()
        assert started.wait(TIMEOUT), "the test's site did not start"

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(TIMEOUT)


class ShopSite(BackgroundSite):
    """A plain shop's site on ``http://localhost:PORT``.

    ChatBuddy runs on ``127.0.0.1``: another site to the browser, so the
    widget's frame is third-party, with partitioned storage, as on a real shop.
    Bind first (the origin goes into ChatBuddy's allowed origins), then serve.
    """

    def __init__(self, lang: str = "hu", **attributes: str) -> None:
        super().__init__()
        #: Set to issue a signed-in customer's token (a JWT), which the page hands
        #: the widget through ChatBuddy.identify(); None: an anonymous shop.
        self.signed_in: Callable[[], str] | None = None
        #: The shop's origin, as the browser sends it.
        self.origin = f"http://localhost:{self.port}"
        #: Where ChatBuddy serves widget.js; set by serve().
        self.chat_url = ""
        #: The page's own language (the widget follows it unless data-lang says).
        self.lang = lang
        # data- attributes of the script tag (data-accent="#0a7d55" from accent=...).
        self._attributes = attributes
        #: Set to a frame's URL (a path on ChatBuddy) to frame it directly instead.
        self.raw_frame = ""

    def embed_tag(self) -> str:
        attributes = "".join(
            f' data-{name.replace("_", "-")}="{html.escape(value)}"'
            for name, value in self._attributes.items()
        )
        tag = f'<script src="{self.chat_url}/widget.js" defer{attributes}></script>'
        if self.signed_in is not None:  # runs after widget.js: deferred scripts keep their order
            tag += '<script src="/signed-in.js" defer></script>'
        return tag

    def serve(self, chat_url: str) -> ShopSite:
        self.chat_url = chat_url
        self.start(
            tornado.web.Application(
                [
                    *[(path, ShopPage, {"site": self}) for path in SHOP_PAGES],
                    (r"/shop\.css", ShopStyle),
                    (r"/favicon\.ico", ShopIcon),
                    (r"/signed-in\.js", SignedInScript),
                    (r"/chat-token", ChatToken, {"site": self}),
                ]
            )
        )
        return self

    def url(self, path: str = "/") -> str:
        return self.origin + path
