"""The chat page in a real browser: headless Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import tornado.web
import tornado.websocket
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Response,
    WebSocket,
    expect,
)

from chatbuddy.web.app import static_path
from chatbuddy.web.http import PageHandler
from tests.browser import (
    DESKTOP,
    PHONE,
    WAIT_MS,
    BackgroundSite,
    accessibility_violations,
    running_browser,
)
from tests.helpers import TIMEOUT, ChatClient
from tests.processes import LiveServer, serve_env, start_server
from tests.redis_server import RedisServer, free_port

PRICE_QUESTION = "Mennyi az ára a Samsung Galaxy S24-nek?"
# Records every connection state the page shows, in order, as window.states.
STATE_WATCH = """window.states = [];
new MutationObserver((records) => records.forEach(({target}) => {
    if (target.id === 'status') window.states.push(target.dataset.state);
})).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-state']});"""
expect.set_options(timeout=WAIT_MS)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with running_browser() as browser:
        yield browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(serve_env(tmp_path), log=tmp_path / "server.log")
    yield live
    live.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(locale="en-US", viewport=DESKTOP)
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
    """The session id the page keeps (the session panel shows it only with ?debug=1)."""
    saved = page.evaluate("localStorage.getItem('chatbuddy.session')")
    return str(json.loads(saved)["id"])


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
    assert session_of(page) == session


def test_the_token_travels_in_the_subprotocol_offer_never_in_the_url(
    context: BrowserContext, server: LiveServer
) -> None:
    page = context.new_page()
    urls: list[str] = []
    greetings: list[dict[str, Any]] = []

    def on_socket(socket: WebSocket) -> None:
        urls.append(socket.url)
        socket.on("framereceived", lambda payload: greetings.extend(greeting_in(payload)))

    page.on("websocket", on_socket)
    page.goto(server.url)
    say(page, "Hol tart a 10042 rendelésem?")
    expect(page.locator(".msg.assistant .body")).to_contain_text(["#10042"])
    token = json.loads(page.evaluate("localStorage.getItem('chatbuddy.session')"))["token"]
    assert token

    page.reload()  # the token goes in the offer: the server resumes the session
    expect(page.locator(".msg.user .body")).to_have_text(["Hol tart a 10042 rendelésem?"])
    expect(page.locator(".msg.assistant .body")).to_contain_text(["#10042"])
    assert [greeting["resumed"] for greeting in greetings] == [False, True]
    assert len(urls) == 2
    for url in urls:
        assert "token" not in url
        assert token not in url


def greeting_in(payload: str | bytes) -> list[dict[str, Any]]:
    """The ``connection_established`` data in a frame the page received, if it is one."""
    frame = json.loads(payload)
    return [frame["data"]] if frame.get("type") == "connection_established" else []


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
    page.wait_for_function(
        "(old) => JSON.parse(localStorage.getItem('chatbuddy.session')).id !== old", arg=old
    )
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
    assert session_of(second) == session_of(first)
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
        # The toggle is named by its visible text, in the language it switches to.
        expect(page.locator("#lang")).to_have_accessible_name("English")
        expect(page.locator("#lang")).to_have_attribute("lang", "en")
        page.locator("#lang").click()
        expect(page.locator("#send")).to_have_text("Send")
        expect(page.locator("#lang")).to_have_accessible_name("Magyar")
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


def test_the_counter_counts_what_the_server_counts_and_the_server_takes_it(
    context: BrowserContext, server: LiveServer
) -> None:
    page = open_chat(context, server.url)
    # "e" + a combining accent is one character after NFC; an emoji is one code
    # point but two UTF-16 units: the server counts 3600 either way.
    page.locator("#input").fill("e\u0301" * 3600)
    expect(page.locator("#counter")).to_have_text("3600 / 4000")
    emoji = "\U0001f600" * 4000  # 8000 UTF-16 units
    page.locator("#input").fill(emoji)
    expect(page.locator("#counter")).to_have_text("4000 / 4000")
    expect(page.locator("#send")).to_be_enabled()
    page.locator("#input").press("Enter")
    expect(page.locator(".msg.assistant")).to_have_count(1)  # answered, not refused
    expect(page.locator(".msg.user")).not_to_have_class(re.compile("failed"))


def test_customers_see_no_session_panel_and_developers_see_it_with_debug(
    context: BrowserContext, server: LiveServer
) -> None:
    page = open_chat(context, server.url)
    expect(page.locator("#session-panel")).to_be_hidden()
    expect(page.locator("#ping")).to_be_hidden()
    debug = open_chat(context, server.url + "/?debug=1")
    expect(debug.locator("#session-panel")).to_be_visible()


def test_ping_and_session_info_buttons_answer(context: BrowserContext, server: LiveServer) -> None:
    page = open_chat(context, server.url + "/?debug=1")
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
        # Every error counts: the browser's own request for /favicon.ico too.
        if message.type == "error":
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


def test_a_notice_does_not_cover_the_newest_message(browser: Browser, server: LiveServer) -> None:
    context = browser.new_context(locale="en-US", viewport={"width": 375, "height": 520})
    try:
        page = open_chat(context, server.url + "/?debug=1")
        for question in (PRICE_QUESTION, "Do you have coupons?", "What laptops do you sell?"):
            say(page, question)
        expect(page.locator(".msg.assistant")).to_have_count(3)
        page.locator("#session-panel summary").click()
        page.locator("#ping").click()  # its answer is a notice
        expect(page.locator(".notice")).to_contain_text(["Pong:"])
        newest = page.locator(".msg").last.bounding_box()
        notice = page.locator(".notice").last.bounding_box()
        shown = page.locator("#messages").bounding_box()
        assert newest
        assert notice
        assert shown
        assert newest["y"] + newest["height"] <= notice["y"]  # above the notice, not under it
        assert newest["y"] + newest["height"] <= shown["y"] + shown["height"] + 1  # scrolled to
    finally:
        context.close()


def test_while_retrying_the_status_counts_down_and_retry_now_connects_at_once(
    context: BrowserContext, tmp_path: Path
) -> None:
    env = serve_env(tmp_path / "runtime")
    port = free_port()
    node = start_server(env, port=port)
    try:
        page = context.new_page()
        page.add_init_script(STATE_WATCH)
        # The page's clock is the test's: no timer fires unless the test moves it,
        # so the backoff takes no real time, and only the button can reconnect.
        page.clock.install()
        page.goto(node.url)
        expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        expect(page.locator("#retry-now")).to_be_hidden()
        page.clock.pause_at(page.evaluate("Date.now()") + 5000)  # no timer is due yet

        node.stop()
        retry_in = page.locator("#retry-in")
        # Let attempts fail (backing off 0.5 s, 1 s, 2 s, …) until a wait of 2 s or more.
        for attempt in range(1, 10):
            page.wait_for_function(
                "(n) => window.states.filter((s) => s === 'retrying').length >= n", arg=attempt
            )
            seconds = int(re.findall(r"\d+", retry_in.inner_text())[0])
            if seconds >= 2:
                break
            page.clock.run_for(seconds * 1000)
        expect(retry_in).to_have_text(f"retrying in {seconds} s")
        page.clock.run_for(1000)
        expect(retry_in).to_have_text(f"retrying in {seconds - 1} s")
        expect(page.locator("#status-text")).to_have_text("Disconnected")

        node = start_server(env, port=port)
        page.get_by_role("button", name="Retry now").click()
        expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        expect(retry_in).to_have_text("")
        expect(page.locator("#retry-now")).to_be_hidden()
    finally:
        node.stop()


def test_when_the_server_did_not_resume_the_session_the_old_conversation_is_cleared(
    context: BrowserContext, tmp_path: Path
) -> None:
    env = serve_env(tmp_path / "runtime")
    port = free_port()
    node = start_server(env, "--store", "memory", port=port)  # a restart forgets every session
    try:
        page = open_chat(context, node.url)
        say(page, PRICE_QUESTION)
        expect(page.locator(".msg.assistant")).to_have_count(1)
        node.stop()
        expect(page.locator("#status")).to_have_attribute("data-state", "retrying")
        say(page, "Where is order 10042?")  # queued for a session the server forgot
        expect(page.locator(".msg.user.pending .state")).to_have_text("queued")
        node = start_server(env, "--store", "memory", port=port)
        expect(page.locator(".notice")).to_contain_text(
            [
                "The previous conversation could not be restored; a new one started.",
                "Your unsent message is back in the message box",
            ]
        )
        expect(page.locator(".msg")).to_have_count(0)
        expect(page.locator("#messages .empty")).to_be_visible()
        expect(page.locator("#input")).to_have_value("Where is order 10042?")
    finally:
        node.stop()


def new_session_of(page: Page, old: str) -> str:
    """The session the page keeps once it has left ``old`` and the server has
    given the new one its token."""
    page.wait_for_function(
        """(old) => {
            const saved = JSON.parse(localStorage.getItem('chatbuddy.session'));
            return saved.id !== old && saved.token;
        }""",
        arg=old,
    )
    return session_of(page)


def test_when_the_store_loses_an_open_pages_session_the_page_says_so_and_starts_anew_once(
    context: BrowserContext, own_redis: RedisServer, tmp_path: Path
) -> None:
    # Sessions of 3 s: the server checks its open pages' sessions every second (4001).
    node = start_server(
        serve_env(tmp_path / "runtime"), "--redis-url", own_redis.url, "--session-ttl", "3s"
    )
    try:
        page = context.new_page()
        sockets: list[str] = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        page.goto(node.url)
        say(page, PRICE_QUESTION)
        expect(page.locator(".msg.assistant")).to_have_count(1)
        old = session_of(page)

        with own_redis.client() as client:
            client.flushall()  # as a Redis restarted without its data
        expect(page.locator(".notice")).to_contain_text(
            ["This conversation has expired; a new one has started."]
        )
        expect(page.locator(".msg")).to_have_count(0)
        new = new_session_of(page, old)
        expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        say(page, "Do you have coupons?")  # the new session works
        expect(page.locator(".msg.assistant")).to_have_count(1)
        assert [url.split("/ws/chat/")[1] for url in sockets] == [old, new]
    finally:
        node.stop()


def in_thread(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to its end on a loop of its own (Playwright's sync API runs one here)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work).result(TIMEOUT)


async def take_over(port: int, session_id: str) -> None:
    """Open a stranger's new session under ``session_id`` (free again once the
    store lost the old one): the old session's pages must never join it."""
    stranger = await ChatClient.open(port, session_id)
    await stranger.greeting()  # the session exists once the socket is greeted
    stranger.close()


def test_a_message_to_a_session_whose_id_was_taken_goes_back_to_the_composer_of_a_new_one(
    context: BrowserContext, own_redis: RedisServer, tmp_path: Path
) -> None:
    node = start_server(serve_env(tmp_path / "runtime"), "--redis-url", own_redis.url)
    try:
        page = open_chat(context, node.url)
        say(page, PRICE_QUESTION)
        expect(page.locator(".msg.assistant")).to_have_count(1)
        # After each reply the page asks for the session's info: that answer must come
        # first, or the server meets the lost session there and closes the tab (4002)
        # before the message below is sent, which then goes to the new session.
        expect(page.locator("#info-count")).to_have_text("2")
        old = session_of(page)
        with own_redis.client() as client:
            client.flushall()
        in_thread(take_over(node.port, old))

        say(page, "Where is order 10042?")  # refused (missing_session), then closed with 4002
        expect(page.locator(".notice")).to_contain_text(
            [
                "This conversation is no longer available; a new one has started.",
                "Your unsent message is back in the message box",
            ]
        )
        expect(page.locator(".msg")).to_have_count(0)
        # Written for the old conversation: not sent to the new one unless the user wants.
        expect(page.locator("#input")).to_have_value("Where is order 10042?")
        new_session_of(page, old)
        page.locator("#input").press("Enter")
        expect(page.locator(".msg.assistant .body")).to_contain_text(["#10042"])
        expect(page.locator(".msg.user .body")).to_have_text(["Where is order 10042?"])
    finally:
        node.stop()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait (up to the tests' timeout) for something another process makes true."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_message_a_draining_server_refused_is_sent_again_after_the_restart_and_answered_once(
    context: BrowserContext, own_redis: RedisServer, tmp_path: Path
) -> None:
    held = tmp_path / "held"
    env = serve_env(tmp_path / "runtime", CHATBUDDY_TEST_HELD=str(held), PYTHONPATH=str(ROOT))
    options = ("--redis-url", own_redis.url, "--agent", "tests.plugins:make_gated_agent")
    port = free_port()
    node = start_server(env, *options, port=port)
    try:
        page = context.new_page()
        sent: list[dict[str, Any]] = []  # every chat_message the page sent, on any socket
        page.on(
            "websocket",
            lambda socket: socket.on("framesent", lambda payload: sent.append(json.loads(payload))),
        )
        page.goto(node.url)
        expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        say(page, "hold this one")  # stored; its reply is still being written...
        wait_until(held.exists, "the agent to hold the reply")

        node.process.send_signal(signal.SIGTERM)  # ...while the server drains
        wait_until(lambda: refuses_connections(port), "the server to stop listening")
        say(page, "Where is order 10042?")  # refused: shutting_down
        expect(page.locator(".notice")).to_contain_text(["The server is restarting"])
        expect(page.locator(".msg.user .state")).to_have_text(["queued"])
        expect(page.locator(".msg.user.failed")).to_have_count(0)

        node.process.send_signal(signal.SIGUSR1)  # the held reply is written and stored;
        expect(page.locator("#status")).to_have_attribute("data-state", "retrying")  # 1001
        assert node.process.wait(TIMEOUT) == 0  # a clean shutdown

        node = start_server(env, *options, port=port)  # the same address, the same Redis
        expect(page.locator(".msg.assistant .body")).to_have_text(
            ["re: hold this one", "re: Where is order 10042?"]
        )
        expect(page.locator(".msg.user.pending")).to_have_count(0)
        resent = [f for f in sent if f.get("content") == "Where is order 10042?"]
        assert len(resent) == 2  # to the draining server, then to the new one
        assert resent[0]["client_message_id"] == resent[1]["client_message_id"]
        page.reload()  # the server has each message, and each reply, once
        expect(page.locator(".msg.user .body")).to_have_text(
            ["hold this one", "Where is order 10042?"]
        )
        expect(page.locator(".msg.assistant")).to_have_count(2)
    finally:
        node.stop()


def test_a_touch_keyboard_gets_a_placeholder_without_shift_enter(
    browser: Browser, server: LiveServer
) -> None:
    context = browser.new_context(locale="en-US", viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = open_chat(context, server.url)
        expect(page.locator("#input")).to_have_attribute("placeholder", "Type a message…")
    finally:
        context.close()
    page = open_chat(browser.new_context(locale="en-US"), server.url)
    expect(page.locator("#input")).to_have_attribute(
        "placeholder", "Type a message… (Enter to send, Shift+Enter for a new line)"
    )
    page.context.close()


def test_screen_readers_hear_who_speaks_and_each_reply_once_and_whole(
    context: BrowserContext, server: LiveServer
) -> None:
    page = open_chat(context, server.url)
    # The conversation is a list, not a live region that would read every chunk.
    messages = page.locator("#messages")
    assert messages.evaluate("(list) => list.tagName") == "OL"
    assert messages.get_attribute("aria-live") is None
    assert messages.get_attribute("role") is None
    page.evaluate(
        """() => {
        window.announced = [];
        const announcer = document.getElementById('announcer');
        new MutationObserver(() => window.announced.push(announcer.textContent))
            .observe(announcer, {subtree: true, childList: true, characterData: true});
    }"""
    )
    say(page, PRICE_QUESTION)
    reply = page.locator(".msg.assistant")
    expect(reply).to_have_count(1)
    expect(page.locator("#announcer")).to_contain_text("349")
    whole = reply.locator(".body").inner_text()
    assert page.evaluate("window.announced") == ["Assistant: " + whole]
    expect(page.locator(".msg.user .speaker")).to_have_text("You:")
    expect(reply.locator(".speaker")).to_have_text("Assistant:")
    expect(page.locator(".msg.user")).to_contain_text("You:")  # read before the text
    page.locator("#lang").click()
    expect(page.locator(".msg.user .speaker")).to_have_text("Ön:")


def test_the_page_has_no_serious_accessibility_violations_in_either_language(
    context: BrowserContext, server: LiveServer
) -> None:
    page = open_chat(context, server.url)
    assert accessibility_violations(page) == []  # empty, with the welcome
    say(page, PRICE_QUESTION)
    expect(page.locator(".msg.assistant")).to_have_count(1)
    page.locator("#input").fill("x" * 3600)  # the counter shows
    assert accessibility_violations(page) == []
    page.locator("#lang").click()
    expect(page.locator("html")).to_have_attribute("lang", "hu")
    assert accessibility_violations(page) == []
    page.locator("#lang").focus()  # the focus ring, too, is checked for contrast
    assert accessibility_violations(page) == []


class FakeChat(tornado.websocket.WebSocketHandler):
    """A chat socket that greets, then closes with the code the test chose (or
    answers chat messages as the test says)."""

    def initialize(self, site: CloseCodeSite) -> None:
        # Says which code to close with, and records the connections.
        self._site = site

    def open(self, *args: Any, **kwargs: Any) -> None:
        self._site.opened += 1
        #: Which of the site's connections this is, from 1.
        self.number = self._site.opened
        self._site.chats.append(self)
        session = self.path_args[0]
        self._site.sessions.append(session)
        offer = self.request.headers.get("Sec-WebSocket-Protocol", "")
        self._site.offers.append(offer)
        data = {
            "connection_id": f"conn_{self._site.opened:016x}", "session_id": session,
            "user_id": None, "timestamp": "2024-01-15T10:30:00Z", "session_token": "t" * 43,
            "resumed": "chatbuddy.token." in offer, "last_message_id": None, "protocol_version": 1,
        }  # fmt: skip
        self.write_message(
            json.dumps({"type": "connection_established", "data": data, "session_id": session})
        )
        if self._site.close_code is not None:
            self.close(self._site.close_code, "closed by the test")

    def on_message(self, message: str | bytes) -> None:
        frame = json.loads(message)
        if frame["type"] == "chat_message" and self._site.on_chat is not None:
            self._site.on_chat(self, frame)

    def send_frame(self, kind: str, **data: Any) -> None:
        """Send a server frame of type ``kind`` with ``data``."""
        data.setdefault("timestamp", "2024-01-15T10:30:00Z")
        self.write_message(
            json.dumps({"type": kind, "data": data, "session_id": self.path_args[0]})
        )

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "chatbuddy.v1" if "chatbuddy.v1" in subprotocols else None


class CloseCodeSite(BackgroundSite):
    """The real page, served with a fake chat socket that closes with ``close_code``
    once it has greeted (None: it stays open), and hands each chat message to
    ``on_chat`` (on the site's thread)."""

    def __init__(
        self,
        close_code: int | None,
        on_chat: Callable[[FakeChat, dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__()
        #: What the socket closes with.
        self.close_code = close_code
        #: What answers a chat message.
        self.on_chat = on_chat
        #: How many sockets the page opened.
        self.opened = 0
        #: The session id of each, in order.
        self.sessions: list[str] = []
        #: The subprotocols each offered, as the header said.
        self.offers: list[str] = []
        #: The connections, in order.
        self.chats: list[FakeChat] = []
        static = static_path()
        self.start(
            tornado.web.Application(
                [
                    (r"/()", PageHandler, {"path": static, "default_filename": "index.html"}),
                    (r"/(favicon\.ico)", PageHandler, {"path": static}),
                    (r"/static/(.*)", PageHandler, {"path": static}),
                    (r"/ws/chat/([^/]*)", FakeChat, {"site": self}),
                ]
            )
        )
        self.url = f"http://127.0.0.1:{self.port}/"

    def close_all(self, code: int) -> None:
        """Close every connection with ``code`` (from the test's thread)."""
        assert self._loop is not None
        for chat in self.chats:
            self._loop.call_soon_threadsafe(chat.close, code)


@pytest.mark.parametrize(
    ("code", "notice"),
    [
        (1000, "The server closed the connection."),
        (1008, "Too many messages in a short time, so the server closed the connection."),
    ],
)
def test_a_terminal_close_code_is_not_retried_until_the_user_asks(
    context: BrowserContext, code: int, notice: str
) -> None:
    site = CloseCodeSite(code)
    try:
        page = context.new_page()
        page.goto(site.url)
        # The terminal path, and only it, says "disconnected" (a retry says "retrying").
        expect(page.locator("#status")).to_have_attribute("data-state", "disconnected")
        expect(page.locator(".notice.error")).to_contain_text([notice])
        assert site.opened == 1
        page.get_by_role("button", name="Retry now").click()
        page.wait_for_function("() => document.querySelectorAll('.notice.error').length === 2")
        assert site.opened == 2
    finally:
        site.stop()


# Every retry code of the server's table, and one it does not know (1012).
@pytest.mark.parametrize("code", [1001, 1009, 1011, 1012, 1013, 4000, 4008])
def test_a_close_code_that_means_try_again_is_retried_by_itself(
    context: BrowserContext, code: int
) -> None:
    site = CloseCodeSite(code)
    try:
        page = context.new_page()
        page.add_init_script(STATE_WATCH)
        page.goto(site.url)
        page.wait_for_function("() => window.states.filter((s) => s === 'connected').length >= 2")
        assert "disconnected" not in page.evaluate("window.states")
        assert site.opened >= 2
    finally:
        site.stop()


def test_after_a_policy_close_a_message_the_user_sends_connects_again(
    context: BrowserContext,
) -> None:
    site = CloseCodeSite(1008)
    try:
        page = context.new_page()
        page.goto(site.url)
        expect(page.locator("#status")).to_have_attribute("data-state", "disconnected")
        say(page, "Are you there?")  # the user asks: one attempt, no loop
        expect(page.locator(".notice.error")).to_have_count(2)
        assert site.opened == 2
        expect(page.locator(".msg.user .state")).to_have_text("queued")
    finally:
        site.stop()


SESSION_ENDED = {
    ("en-US", 4001): "This conversation has expired; a new one has started.",
    ("en-US", 4002): "This conversation is no longer available; a new one has started.",
    ("en-US", 4003): "This conversation was deleted; a new one has started.",
    ("hu-HU", 4001): "Ez a beszélgetés lejárt; új beszélgetés indult.",
    ("hu-HU", 4002): "Ez a beszélgetés már nem érhető el; új beszélgetés indult.",
    ("hu-HU", 4003): "Ezt a beszélgetést törölték; új beszélgetés indult.",
}


@pytest.mark.parametrize(("locale", "code"), list(SESSION_ENDED))
def test_when_the_server_ends_the_session_the_page_starts_one_new_session_and_never_loops(
    browser: Browser, locale: str, code: int
) -> None:
    site = CloseCodeSite(code)  # it ends every session it greets, the new one too
    context = browser.new_context(locale=locale)
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.add_init_script(STATE_WATCH)
        page.add_init_script(
            """localStorage.setItem('chatbuddy.session',
                JSON.stringify({id: 'web-old', token: 'old-token'}))"""
        )
        page.goto(site.url)
        expect(page.locator(".notice").first).to_have_text(SESSION_ENDED[locale, code])
        # The new session ended too: the page stops and waits for the user.
        expect(page.locator("#status")).to_have_attribute("data-state", "disconnected")
        assert "retrying" not in page.evaluate("window.states")
        assert site.opened == 2
        assert site.sessions[0] == "web-old"
        assert site.offers[0] == "chatbuddy.v1, chatbuddy.token.old-token"
        assert site.sessions[1] != "web-old"
        assert site.offers[1] == "chatbuddy.v1"  # a new session: the old token is dropped
        stored = json.loads(page.evaluate("localStorage.getItem('chatbuddy.session')"))
        assert stored["token"] is None
        assert stored["id"] not in site.sessions
    finally:
        context.close()
        site.stop()


def test_a_message_refused_because_the_session_is_gone_is_not_marked_failed(
    context: BrowserContext,
) -> None:
    def session_gone(chat: FakeChat, frame: dict[str, Any]) -> None:
        # As a server on the memory engine does it: the error first, then the close.
        chat.send_frame(
            "error",
            error_type="missing_session",
            error_message="session 'x' has expired; open a new one",
            request_type="chat_message",
        )
        chat.close(4001, "session expired")

    site = CloseCodeSite(None, on_chat=session_gone)
    try:
        page = open_chat(context, site.url)
        say(page, "Where is order 10042?")
        expect(page.locator("#input")).to_have_value("Where is order 10042?")
        expect(page.locator(".notice")).to_contain_text(
            ["This conversation has expired; a new one has started."]
        )
        expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        assert site.opened == 2
        expect(page.locator(".notice.error")).to_have_count(0)
        expect(page.locator(".msg")).to_have_count(0)
    finally:
        site.stop()


def test_while_a_server_drains_the_page_holds_its_messages_and_resends_them_in_order(
    context: BrowserContext,
) -> None:
    received: list[tuple[int, dict[str, Any]]] = []  # (connection, chat_message)

    def draining_then_answering(chat: FakeChat, frame: dict[str, Any]) -> None:
        received.append((chat.number, frame))
        if chat.number == 1 and len(received) == 3:  # "first" was taken before the drain
            for _ in ("second", "third"):  # both sent before the page heard of it
                chat.send_frame(
                    "error",
                    error_type="shutting_down",
                    error_message="the server is restarting; send it again once reconnected",
                    request_type="chat_message",
                )
        elif chat.number > 1:
            n = len(received)
            chat.send_frame(
                "chat_response", message_id=2 * n, content="re: " + frame["content"],
                agent_type="echo", confidence=1.0, metadata={}, in_reply_to=2 * n - 1,
            )  # fmt: skip

    site = CloseCodeSite(None, on_chat=draining_then_answering)
    try:
        page = open_chat(context, site.url)
        say(page, "first")
        say(page, "second")
        say(page, "third")
        expect(page.locator(".msg.user .state")).to_have_text(["queued", "queued"])
        say(page, "fourth")  # the server drains: this one waits without being sent
        expect(page.locator(".msg.user .state")).to_have_text(["queued"] * 3)
        expect(page.locator(".msg.user.failed")).to_have_count(0)
        site.close_all(1001)

        answers = ["re: first", "re: second", "re: third", "re: fourth"]
        expect(page.locator(".msg.assistant .body")).to_have_text(answers)
        first = {f["content"]: f["client_message_id"] for n, f in received if n == 1}
        assert list(first) == ["first", "second", "third"]
        again = [(f["content"], f["client_message_id"]) for n, f in received if n == 2]
        assert [content for content, _ in again] == ["first", "second", "third", "fourth"]
        for content, cmid in again[:3]:
            assert first[content] == cmid  # the same message, so a server stores it once
    finally:
        site.stop()


def test_an_error_that_names_its_message_marks_that_message_not_the_oldest(
    context: BrowserContext,
) -> None:
    def refuse_the_second(chat: FakeChat, frame: dict[str, Any]) -> None:
        if frame["content"] == "second":
            chat.send_frame(
                "error",
                error_type="validation_error",
                error_message="not this one",
                request_type="chat_message",
                client_message_id=frame["client_message_id"],
            )

    site = CloseCodeSite(None, on_chat=refuse_the_second)
    try:
        page = open_chat(context, site.url)
        say(page, "first")  # never answered: still in flight when the error comes
        say(page, "second")
        expect(page.locator(".msg.user.failed .body")).to_have_text(["second"])
        expect(page.locator(".msg.user.failed")).to_have_count(1)
    finally:
        site.stop()
