"""The chat page in a real browser: headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Response,
    expect,
    sync_playwright,
)

from tests.helpers import TIMEOUT
from tests.processes import LiveServer, serve_env, start_server
from tests.redis_server import RedisServer, free_port

PRICE_QUESTION = "Mennyi az ára a Samsung Galaxy S24-nek?"
WAIT_MS = int(2 * TIMEOUT * 1000)
expect.set_options(timeout=WAIT_MS)
ROOT = Path(__file__).resolve().parent.parent


def chromium_path() -> str:
    """Debian's Chromium (Playwright's own browser download does not work here)."""
    path = os.environ.get("CHATBUDDY_CHROMIUM") or shutil.which("chromium")
    assert path, "Chromium is needed for the browser tests: apt-get install chromium"
    return path


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=chromium_path(),
        headless=True,
        args=[
            "--no-sandbox",  # tests run as root here
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
    yield browser
    browser.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(serve_env(tmp_path), log=tmp_path / "server.log")
    yield live
    live.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(locale="en-US", viewport={"width": 1000, "height": 760})
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


def open_chat(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.dialogs = dialogs  # type: ignore[attr-defined]
    page.goto(url)
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    return page


def session_of(page: Page) -> str:
    """The session id the page shows in its (possibly collapsed) session panel."""
    return page.locator("#info-session").text_content() or ""


def say(page: Page, text: str) -> None:
    page.locator("#input").fill(text)
    page.locator("#input").press("Enter")


def test_a_message_gets_a_reply_that_streams_in(
    context: BrowserContext, server: LiveServer
) -> None:
    page = open_chat(context, server.url)
    # Record how the reply's text grows, to see it arrive in pieces.
    page.evaluate(
        """() => {
        window.lengths = [];
        new MutationObserver(() => {
          const last = document.querySelector('.msg.assistant:last-child .body');
          if (last) window.lengths.push(last.textContent.length);
        }).observe(document.getElementById('messages'),
                   {subtree: true, childList: true, characterData: true});
    }"""
    )
    say(page, PRICE_QUESTION)
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".body")).to_contain_text("349")
    expect(reply.locator(".body")).to_contain_text("Ft")
    expect(reply.locator(".agent")).to_have_text("product")
    expect(page.locator(".msg.user .body")).to_have_text([PRICE_QUESTION])
    lengths = page.evaluate("window.lengths")
    # A one-line answer comes in two chunks (the coordinator's chunks grow: 4 words,
    # then 8, ...): the page shows the first words, then the rest.
    assert len(set(lengths)) >= 2, f"the reply did not stream: {lengths}"
    assert lengths[0] < lengths[-1], f"the reply did not stream: {lengths}"
    expect(page.locator("#typing")).to_be_hidden()
    expect(page.locator("#info-count")).to_have_text("2")


def test_a_reload_shows_the_same_conversation(context: BrowserContext, server: LiveServer) -> None:
    page = open_chat(context, server.url)
    say(page, "Hol tart a 10042 rendelésem?")
    expect(page.locator(".msg.assistant .body")).to_contain_text(["#10042"])
    session = session_of(page)

    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator(".msg.user .body")).to_have_text(["Hol tart a 10042 rendelésem?"])
    expect(page.locator(".msg.assistant .body")).to_contain_text(["#10042"])
    expect(page.locator("#info-session")).to_have_text(session)


def test_a_new_conversation_starts_empty_with_a_new_session(
    context: BrowserContext, server: LiveServer
) -> None:
    page = open_chat(context, server.url)
    say(page, "Szia!")
    expect(page.locator(".msg.assistant")).to_have_count(1)
    old = session_of(page)
    page.locator("#new-chat").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.locator("#info-session")).not_to_have_text(old)
    expect(page.locator("#messages .empty")).to_have_text(
        "Welcome! Ask about products, orders or coupons."
    )


def test_markup_typed_by_a_user_is_shown_as_text_and_runs_nothing(
    context: BrowserContext, server: LiveServer
) -> None:
    page = open_chat(context, server.url)
    payload = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    say(page, payload)
    expect(page.locator(".msg.assistant")).to_have_count(1)
    expect(page.locator(".msg.user .body")).to_have_text([payload])
    assert page.locator("#messages img, #messages script").count() == 0
    page.reload()  # and again when it comes back from history
    expect(page.locator(".msg.user .body")).to_have_text([payload])
    assert page.locator("#messages img, #messages script").count() == 0
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_two_pages_of_one_session_stay_in_sync(context: BrowserContext, server: LiveServer) -> None:
    first = open_chat(context, server.url)
    second = open_chat(context, server.url)  # same browser: same session, same token
    expect(second.locator("#info-session")).to_have_text(session_of(first))
    say(first, PRICE_QUESTION)
    expect(second.locator(".msg.user .body")).to_have_text([PRICE_QUESTION])
    expect(second.locator(".msg.assistant .body")).to_contain_text(["349"])
    say(second, "Do you have coupons?")
    expect(first.locator(".msg.user .body")).to_have_text([PRICE_QUESTION, "Do you have coupons?"])
    expect(first.locator(".msg.assistant")).to_have_count(2)
    expect(second.locator(".msg.assistant")).to_have_count(2)


def test_the_page_follows_the_browser_language_and_can_switch(
    browser: Browser, server: LiveServer
) -> None:
    context = browser.new_context(locale="hu-HU")
    try:
        page = context.new_page()
        page.goto(server.url)
        expect(page.locator("#status-text")).to_have_text("Kapcsolódva")
        expect(page.locator("#send")).to_have_text("Küldés")
        page.locator("#lang").click()
        expect(page.locator("#send")).to_have_text("Send")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.reload()  # the choice is remembered
        expect(page.locator("#send")).to_have_text("Send")
    finally:
        context.close()


def test_the_counter_warns_near_the_limit_and_over_it_sending_is_off(
    context: BrowserContext, server: LiveServer
) -> None:
    page = open_chat(context, server.url)
    page.locator("#input").fill("x" * 3600)
    expect(page.locator("#counter")).to_have_text("3600 / 4000")
    expect(page.locator("#send")).to_be_enabled()
    page.locator("#input").fill("x" * 4001)
    expect(page.locator("#counter")).to_have_class("counter over")
    expect(page.locator("#send")).to_be_disabled()


def test_ping_and_session_info_buttons_answer(context: BrowserContext, server: LiveServer) -> None:
    page = open_chat(context, server.url)
    page.locator("#session-panel summary").click()
    page.locator("#ping").click()
    expect(page.locator(".notice")).to_contain_text(["Pong:"])
    page.locator("#session-info").click()
    expect(page.locator("#info-count")).to_have_text("0")
    expect(page.locator("#info-connection")).to_contain_text("conn_")


def test_a_phone_sized_screen_needs_no_sideways_scrolling(
    browser: Browser, server: LiveServer
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 667}, locale="en-US")
    try:
        page = open_chat(context, server.url)
        say(page, "What laptops do you sell?")
        expect(page.locator(".msg.assistant")).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        expect(page.locator("#input")).to_be_in_viewport()
    finally:
        context.close()


def test_after_a_server_restart_the_page_reconnects_by_itself_and_loses_nothing(
    context: BrowserContext, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    env = serve_env(tmp_path / "runtime")
    port = free_port()
    node = start_server(env, "--redis-url", redis.url, port=port)
    try:
        page = open_chat(context, node.url)
        say(page, PRICE_QUESTION)
        expect(page.locator(".msg.assistant")).to_have_count(1)

        node.stop()  # the page is told the server is going away
        expect(page.locator("#status")).to_have_attribute("data-state", "retrying")
        say(page, "Where is order 10042?")  # typed while offline: queued
        expect(page.locator(".msg.user.pending .state")).to_have_text("queued")

        node = start_server(env, "--redis-url", redis.url, port=port)
        expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        expect(page.locator(".msg.assistant")).to_have_count(2)
        expect(page.locator(".msg.assistant .body").last).to_contain_text("#10042")
        expect(page.locator(".msg.user .body")).to_have_text(
            [PRICE_QUESTION, "Where is order 10042?"]
        )
        page.reload()  # the server has it all, each message once
        expect(page.locator(".msg.user")).to_have_count(2)
        expect(page.locator(".msg.assistant")).to_have_count(2)
    finally:
        node.stop()
        redis.stop()


def test_a_screenshot_of_a_conversation(
    context: BrowserContext, server: LiveServer, tmp_path: Path
) -> None:
    """Set CHATBUDDY_UPDATE_SCREENSHOT=1 to refresh docs/screenshot.png."""
    page = open_chat(context, server.url)
    say(page, PRICE_QUESTION)
    expect(page.locator(".msg.assistant")).to_have_count(1)
    say(page, "Can you recommend something similar?")
    expect(page.locator(".msg.assistant")).to_have_count(2)
    say(page, "Do you have coupons?")
    expect(page.locator(".msg.assistant")).to_have_count(3)
    update = os.environ.get("CHATBUDDY_UPDATE_SCREENSHOT") == "1"
    target = ROOT / "docs" / "screenshot.png" if update else tmp_path / "screenshot.png"
    page.screenshot(path=str(target))
    assert target.stat().st_size > 10_000


def test_the_page_runs_as_modules_without_console_errors_or_csp_violations(
    context: BrowserContext, server: LiveServer
) -> None:
    page = context.new_page()
    errors: list[str] = []
    scripts: dict[str, str] = {}  # script URL -> the Content-Type it was served with

    def on_console(message: ConsoleMessage) -> None:
        # The page has no icon; the browser's own request for one is not the page's error.
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            errors.append(f"{message.text} at {message.location['url']}")

    def on_response(response: Response) -> None:
        if response.url.endswith(".js"):
            scripts[response.url] = response.headers.get("content-type", "")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", on_response)
    # The browser reports CSP violations as events too; an init script is not subject to the CSP.
    page.add_init_script(
        """window.cspViolations = [];
        document.addEventListener('securitypolicyviolation', (event) =>
            window.cspViolations.push(event.violatedDirective + ' ' + event.blockedURI));"""
    )
    page.goto(server.url)
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    say(page, PRICE_QUESTION)  # the whole round trip runs: sending, streaming, the reply
    expect(page.locator(".msg.assistant .body")).to_contain_text(["349"])
    expect(page.locator("#info-count")).to_have_text("2")

    assert page.evaluate("window.cspViolations") == []
    assert errors == []
    assert page.evaluate("[...document.scripts].map((script) => script.type)") == ["module"]
    assert page.evaluate("typeof window.CHATBUDDY_I18N") == "undefined"  # no globals
    assert scripts, "no script was loaded"
    for url, content_type in scripts.items():  # module scripts need a JavaScript MIME type
        assert content_type.startswith("text/javascript"), (url, content_type)
