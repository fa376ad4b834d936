"""The widget on a shop's own site, in a real browser.

ChatBuddy runs on ``127.0.0.1:PORT2``; the shop is a plain Tornado site of the
test on ``localhost:PORT``, another site to the browser, with a strict
Content-Security-Policy of its own (the directives docs/widget.md gives) and a
stylesheet that would spoil any element it reached.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Frame,
    FrameLocator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.browser import (
    DESKTOP,
    PHONE,
    WAIT_MS,
    ShopSite,
    accessibility_violations,
    launch,
)
from tests.processes import LiveServer, serve_env, start_server

expect.set_options(timeout=WAIT_MS)
ROOT = Path(__file__).resolve().parent.parent
PRICE_QUESTION = "Mennyi az ára a Samsung Galaxy S24-nek?"
FRAME = "iframe[title=ChatBuddy]"

# Collects CSP violations in the shop's page and in the widget's frame (init
# scripts run in every frame, and are not subject to the page's CSP).
CSP_WATCH = """window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) =>
    window.cspViolations.push(event.violatedDirective + ' ' + event.blockedURI));"""


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium as Chrome ships it: a frame of another site has partitioned storage."""
    browser = launch(playwright, partitioned_storage=True)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def storage_refusing_browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium that gives a frame of another site no storage (third-party storage blocked)."""
    browser = launch(playwright)
    yield browser
    browser.close()


@contextmanager
def shop_with_chat(runtime: Path, **attributes: str) -> Iterator[tuple[ShopSite, LiveServer]]:
    """A shop's site embedding the widget, and a ChatBuddy that allows it."""
    shop = ShopSite(**attributes)
    # Written the ways users write origins: a list with a comma and a space, a trailing slash.
    allowed = f"https://other-shop.example, {shop.origin}/"
    chat = start_server(
        serve_env(runtime, CHATBUDDY_ALLOWED_ORIGINS=allowed), log=runtime / "chat.log"
    )
    shop.serve(chat.url)
    try:
        yield shop, chat
    finally:
        shop.stop()
        chat.stop()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[ShopSite, LiveServer]]:
    with shop_with_chat(tmp_path) as pair:
        yield pair


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(locale="hu-HU", viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


def visit(context: BrowserContext, url: str) -> tuple[Page, FrameLocator]:
    """Open a shop's page; wait for the widget's launcher. Console errors and
    CSP violations are collected on ``page.problems``."""
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.add_init_script(CSP_WATCH)
    page.problems = problems  # type: ignore[attr-defined]
    page.goto(url)
    widget = page.frame_locator(FRAME)
    expect(widget.locator("#launcher")).to_be_visible()
    return page, widget


def frame_of(page: Page) -> Frame:
    handle = page.locator(FRAME).element_handle()
    assert handle is not None
    frame = handle.content_frame()
    assert frame is not None
    return frame


def open_widget(widget: FrameLocator) -> None:
    widget.locator("#launcher").click()
    expect(widget.locator("#window")).to_be_visible()
    expect(widget.locator("#status")).to_have_attribute("data-state", "connected")


def ask(widget: FrameLocator, text: str) -> None:
    widget.locator("#input").fill(text)
    widget.locator("#input").press("Enter")


def stored_session(frame: Frame, shop: ShopSite) -> str:
    """The session id the widget keeps for this shop (in the frame's own storage)."""
    saved = frame.evaluate(f"localStorage.getItem('chatbuddy.widget.session:{shop.origin}')")
    return str(json.loads(saved)["id"])


def test_a_customer_asks_in_the_widget_and_finds_the_conversation_on_the_next_page(
    context: BrowserContext, site: tuple[ShopSite, LiveServer]
) -> None:
    shop, _ = site
    page, widget = visit(context, shop.url())
    sockets: list[str] = []  # the frame's sockets are the page's too
    page.on("websocket", lambda socket: sockets.append(socket.url))
    # The launcher says what it does, in the shop's language.
    expect(widget.get_by_role("button", name="Csevegés megnyitása")).to_be_visible()
    open_widget(widget)
    frame = frame_of(page)
    frame.evaluate(
        """() => {
        window.lengths = [];
        new MutationObserver(() => {
          const last = document.querySelector('.msg.assistant:last-child .body');
          if (last) window.lengths.push(last.textContent.length);
        }).observe(document.getElementById('messages'),
                   {subtree: true, childList: true, characterData: true});
    }"""
    )
    ask(widget, PRICE_QUESTION)
    reply = widget.locator(".msg.assistant .body")
    expect(reply).to_contain_text("349")
    lengths = frame.evaluate("window.lengths")
    # A one-line answer comes in two chunks (they grow: 4 words, then 8, ...).
    assert len(set(lengths)) >= 2, f"the reply did not stream: {lengths}"
    assert lengths[0] < lengths[-1], f"the reply did not stream: {lengths}"
    # Screen readers hear the whole reply once, not each chunk.
    expect(widget.locator("#announcer")).to_have_text("Asszisztens: " + reply.inner_text())
    # The shop's stylesheet does not reach into the widget.
    assert frame.evaluate("getComputedStyle(document.getElementById('send')).letterSpacing") in (
        "normal",
        "0px",
    )
    session = stored_session(frame, shop)

    page.get_by_role("link", name="Laptopok").click()
    expect(page.locator("h1")).to_have_text("Laptopok és tabletek")
    widget = page.frame_locator(FRAME)
    # Still open, as it was, with the conversation, in the same session.
    expect(widget.locator("#status")).to_have_attribute("data-state", "connected")
    expect(widget.locator(".msg.user .body")).to_have_text([PRICE_QUESTION])
    expect(widget.locator(".msg.assistant .body")).to_contain_text(["349"])
    assert stored_session(frame_of(page), shop) == session
    # The token stays in the frame's storage: the shop's scripts cannot read it.
    assert page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('chatbuddy'))") == []

    page.reload()
    widget = page.frame_locator(FRAME)
    expect(widget.locator(".msg.assistant .body")).to_contain_text(["349"])
    # It resumed with the token offered as a subprotocol, never written into a URL.
    assert len(sockets) == 3
    assert not any("token" in url for url in sockets)
    for target in (page, frame_of(page)):
        assert target.evaluate("window.cspViolations") == []
    assert page.problems == []  # type: ignore[attr-defined]


def test_where_the_browser_refuses_the_frame_storage_the_conversation_still_continues(
    storage_refusing_browser: Browser, site: tuple[ShopSite, LiveServer]
) -> None:
    shop, _ = site
    context = storage_refusing_browser.new_context(locale="en-US", viewport=DESKTOP)
    try:
        page, widget = visit(context, shop.url())
        assert (
            frame_of(page).evaluate(
                "(() => { try { localStorage; return true; } catch (e) { return false; } })()"
            )
            is False
        )
        open_widget(widget)
        ask(widget, "Do you have coupons?")
        expect(widget.locator(".msg.assistant")).to_have_count(1)
        page.get_by_role("link", name="Laptopok").click()
        widget = page.frame_locator(FRAME)
        expect(widget.locator(".msg.user .body")).to_have_text(["Do you have coupons?"])
        expect(widget.locator(".msg.assistant")).to_have_count(1)
        # Here (and only here) the loader keeps the frame's session in the shop's storage.
        keys = page.evaluate("Object.keys(localStorage)")
        assert f"chatbuddy.widget.session:{shop.origin}" in keys
    finally:
        context.close()


def test_a_shop_that_is_not_allowed_gets_no_connection_and_a_console_message(
    context: BrowserContext, site: tuple[ShopSite, LiveServer], tmp_path: Path
) -> None:
    _, chat = site
    stranger = ShopSite().serve(chat.url)  # another port: another origin, not allowed
    try:
        page = context.new_page()
        sockets: list[str] = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        advice = f"--allowed-origin {stranger.origin}"
        with page.expect_console_message(lambda message: advice in message.text) as console:
            page.goto(stranger.url())
        assert console.value.type == "error"
        assert console.value.text.startswith("ChatBuddy: ")
        assert page.locator("iframe").count() == 0
        log = (tmp_path / "chat.log").read_text()
        assert f"widget refused for origin '{stranger.origin}'" in log

        # A page that frames the chat itself, without the loader, is refused by the browser.
        config = chat.url + "/widget/config"
        request = urllib.request.Request(config, headers={"Origin": site[0].origin})  # noqa: S310
        with urllib.request.urlopen(request) as response:  # noqa: S310 (the test's own server)
            stranger.raw_frame = json.load(response)["frame"] + "#origin=" + stranger.origin
        with page.expect_console_message(lambda message: "frame-ancestors" in message.text):
            page.goto(stranger.url())
        assert sockets == []
    finally:
        stranger.stop()


def test_the_one_global_api_opens_sends_closes_and_reports_messages(
    context: BrowserContext, site: tuple[ShopSite, LiveServer]
) -> None:
    shop, _ = site
    page = context.new_page()
    page.add_init_script(CSP_WATCH)  # as visit() does
    page.goto(shop.url("/?plain=1"))
    plain = set(page.evaluate("Object.keys(window)"))
    page, widget = visit(context, shop.url())
    added = set(page.evaluate("Object.keys(window)")) - plain
    assert {key for key in added if not key.isdigit()} == {"ChatBuddy"}  # "0" is the frame

    page.evaluate(
        """() => {
        window.seen = [];
        for (const name of ['open', 'close', 'message'])
          ChatBuddy.on(name, (detail) => window.seen.push([name, detail.role || '']));
        ChatBuddy.send('Vannak kuponjaitok?');
    }"""
    )
    expect(widget.locator("#window")).to_be_visible()
    expect(widget.locator(".msg.assistant")).to_have_count(1)
    page.wait_for_function("() => window.seen.some(([name, role]) => role === 'assistant')")
    page.evaluate("ChatBuddy.close()")
    expect(widget.locator("#window")).to_be_hidden()
    page.wait_for_function("() => window.seen.some(([name]) => name === 'close')")
    assert page.evaluate("window.seen") == [
        ["open", ""],
        ["message", "user"],
        ["message", "assistant"],
        ["close", ""],
    ]


def test_the_keyboard_opens_the_widget_and_escape_returns_to_the_launcher(
    context: BrowserContext, site: tuple[ShopSite, LiveServer]
) -> None:
    shop, _ = site
    page, widget = visit(context, shop.url())
    launcher = widget.get_by_role("button", name="Csevegés megnyitása")
    launcher.focus()
    page.keyboard.press("Enter")
    expect(widget.locator("#input")).to_be_focused()
    expect(widget.locator("#launcher")).to_have_accessible_name("Csevegés bezárása")
    expect(widget.locator("#launcher")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(widget.locator("#window")).to_be_hidden()
    expect(launcher).to_be_focused()


@pytest.mark.parametrize("first", ["hu", "en"])
def test_the_widget_has_no_serious_accessibility_violations_in_either_language(
    browser: Browser, tmp_path: Path, first: str
) -> None:
    context = browser.new_context(locale="en-US", viewport=DESKTOP)
    try:
        with shop_with_chat(tmp_path, lang=first) as (shop, _):
            page, widget = visit(context, shop.url())
            assert accessibility_violations(page) == []  # the shop's page, widget closed
            open_widget(widget)
            ask(widget, PRICE_QUESTION)
            expect(widget.locator(".msg.assistant")).to_have_count(1)
            frame = frame_of(page)
            expect(widget.locator("html")).to_have_attribute("lang", first)
            assert accessibility_violations(frame) == []
            widget.locator("#lang").click()
            expect(widget.locator("html")).not_to_have_attribute("lang", first)
            assert accessibility_violations(frame) == []
            assert accessibility_violations(page) == []  # the shop's page, widget open
    finally:
        context.close()


def test_a_shops_accent_colour_and_greeting_are_used_and_stay_readable(
    browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(locale="en-US", viewport=DESKTOP)
    try:
        with shop_with_chat(
            tmp_path, lang="en", accent="#facc15", greeting="Hi! Looking for a laptop?"
        ) as (shop, _):
            page, widget = visit(context, shop.url())
            open_widget(widget)
            expect(widget.locator("#messages .empty")).to_have_text("Hi! Looking for a laptop?")
            launcher = widget.locator("#launcher")
            expect(launcher).to_have_css("background-color", "rgb(250, 204, 21)")
            expect(launcher).to_have_css("color", "rgb(17, 24, 39)")  # dark text on yellow
            assert accessibility_violations(frame_of(page)) == []
    finally:
        context.close()


def test_on_a_phone_the_open_widget_fills_the_screen_and_closes_with_its_own_button(
    browser: Browser, site: tuple[ShopSite, LiveServer]
) -> None:
    shop, _ = site
    context = browser.new_context(locale="en-US", viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page, widget = visit(context, shop.url())
        widget.locator("#launcher").tap()
        expect(widget.locator("#window")).to_be_visible()
        box = page.locator(FRAME).bounding_box()
        assert box == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
        # A touch keyboard has no Shift+Enter to mention (the shop's page is Hungarian).
        expect(widget.locator("#input")).to_have_attribute("placeholder", "Írjon üzenetet…")
        widget.locator("#close").tap()
        expect(widget.locator("#window")).to_be_hidden()
        expect(widget.locator("#launcher")).to_be_visible()
    finally:
        context.close()


def test_screenshots_of_the_widget_closed_and_open_on_a_desktop_and_a_phone(
    browser: Browser, site: tuple[ShopSite, LiveServer], tmp_path: Path
) -> None:
    """Set CHATBUDDY_UPDATE_SCREENSHOT=1 to refresh docs/widget-*.png."""
    shop, _ = site
    update = os.environ.get("CHATBUDDY_UPDATE_SCREENSHOT") == "1"
    folder = ROOT / "docs" if update else tmp_path
    for name, viewport, mobile in [("desktop", DESKTOP, False), ("phone", PHONE, True)]:
        context = browser.new_context(
            locale="hu-HU", viewport=viewport, is_mobile=mobile, has_touch=mobile
        )
        try:
            page, widget = visit(context, shop.url())
            page.screenshot(path=str(folder / f"widget-{name}-closed.png"))
            open_widget(widget)
            ask(widget, PRICE_QUESTION)
            expect(widget.locator(".msg.assistant")).to_have_count(1)
            widget.locator("#input").blur()
            page.screenshot(path=str(folder / f"widget-{name}-open.png"))
        finally:
            context.close()
    for state in ("closed", "open"):
        for name in ("desktop", "phone"):
            assert (folder / f"widget-{name}-{state}.png").stat().st_size > 5_000
