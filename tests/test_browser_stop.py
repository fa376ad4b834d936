"""The page's Stop button and tool status, in headless Chromium, with the llm agent.

A real `chatbuddy serve --agent llm` whose model is the fake of tests/fake_model.py,
served from a background thread (the browser tests are synchronous).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.browser import DESKTOP, WAIT_MS, BackgroundSite, ShopSite, running_browser
from tests.fake_model import FakeModel, Hold, Stream, Text, call, say
from tests.helpers import TIMEOUT
from tests.processes import LiveServer, serve_env, start_server

expect.set_options(timeout=WAIT_MS)


def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (up to TIMEOUT) for something the server or the fake makes true."""
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with running_browser() as browser:
        yield browser


@pytest.fixture
def fake() -> Iterator[FakeModel]:
    model = FakeModel()
    site = BackgroundSite()
    model.port = site.port
    site.start(model.app())
    yield model
    site.stop()


def serve_llm(runtime: Path, fake: FakeModel, **env: str) -> LiveServer:
    """`chatbuddy serve --agent llm` asking the fake."""
    return start_server(
        serve_env(runtime, CHATBUDDY_LLM_API_KEY="sk-browser-test", **env),
        "--agent",
        "llm",
        "--llm-model",
        "fake-model",
        "--llm-base-url",
        fake.url,
        log=runtime / "server.log",
    )


@pytest.fixture
def server(tmp_path: Path, fake: FakeModel) -> Iterator[LiveServer]:
    live = serve_llm(tmp_path, fake)
    yield live
    live.stop()


@pytest.fixture
def shop(tmp_path: Path, fake: FakeModel) -> Iterator[ShopSite]:
    """A Hungarian shop's site whose pages embed the widget of an llm ChatBuddy."""
    site = ShopSite(lang="hu")
    live = serve_llm(tmp_path, fake, CHATBUDDY_ALLOWED_ORIGINS=site.origin)
    site.serve(live.url)
    yield site
    site.stop()
    live.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(locale="en-US", viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


def test_stop_shows_while_the_assistant_works_and_stops_the_reply(
    context: BrowserContext, server: LiveServer, fake: FakeModel
) -> None:
    # Created here, awaited in the fake's thread, never set: the model stalls there.
    stall = asyncio.Event()
    fake.answer(
        call("order_status", {"order_number": "10042"}),
        Stream((Text("Your order 10042 "), Hold(stall), Text("has shipped."))),
    )
    page = context.new_page()
    page.goto(server.url)
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator("#stop")).to_be_hidden()
    page.locator("#input").fill("Where is my order 10042?")
    page.locator("#input").press("Enter")
    stop = page.locator("#stop")
    expect(stop).to_be_visible()
    expect(stop).to_have_text("Stop")
    expect(page.locator(".msg.assistant .body").last).to_have_text("Your order 10042 ")
    until(lambda: len(fake.requests) == 2, "the second request to the model")
    stop.click()
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".stopped")).to_have_text("stopped")
    expect(reply.locator(".body")).to_have_text("Your order 10042 ")
    expect(stop).to_be_hidden()
    until(lambda: fake.requests[1].closed_early, "the request to the model closed")
    fake.answer(say("Anything else?"))
    page.locator("#input").fill("Thanks")
    page.locator("#input").press("Enter")
    expect(page.locator(".msg.assistant .body").last).to_have_text("Anything else?")
    expect(stop).to_be_hidden()
    page.reload()
    expect(page.locator(".msg.assistant").first.locator(".stopped")).to_have_text("stopped")


def test_the_page_says_which_tool_runs_while_no_text_comes(
    context: BrowserContext, server: LiveServer, fake: FakeModel
) -> None:
    stall = asyncio.Event()
    fake.answer(call("order_status", {"order_number": "10042"}), Stream((Hold(stall),)))
    page = context.new_page()
    page.goto(server.url)
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    page.locator("#input").fill("Where is my order 10042?")
    page.locator("#input").press("Enter")
    expect(page.locator(".stopbar .activity")).to_have_text("Looking up your order…")
    if os.environ.get("CHATBUDDY_SCREENSHOTS"):
        page.screenshot(path=os.environ["CHATBUDDY_SCREENSHOTS"])
    page.locator("#stop").click()
    expect(page.locator(".stopbar")).to_be_hidden()


def test_the_widget_on_a_shops_site_has_the_stop_button_in_the_shops_language(
    context: BrowserContext, shop: ShopSite, fake: FakeModel
) -> None:
    stall = asyncio.Event()
    fake.answer(
        call("order_status", {"order_number": "10042"}),
        Stream((Text("A 10042-es rendelése "), Hold(stall), Text("úton van."))),
    )
    page = context.new_page()
    page.goto(shop.url())
    widget = page.frame_locator("iframe[title=ChatBuddy]")
    widget.locator("#launcher").click()
    expect(widget.locator("#status")).to_have_attribute("data-state", "connected")
    stop = widget.locator("#stop")
    expect(stop).to_be_hidden()
    widget.locator("#input").fill("Hol tart a 10042-es rendelésem?")
    widget.locator("#input").press("Enter")
    expect(widget.locator(".msg.assistant .body").last).to_have_text("A 10042-es rendelése ")
    expect(stop).to_have_text("Leállítás")
    until(lambda: len(fake.requests) == 2, "the second request to the model")
    stop.click()
    reply = widget.locator(".msg.assistant").last
    expect(reply.locator(".stopped")).to_have_text("leállítva")
    expect(reply.locator(".body")).to_have_text("A 10042-es rendelése ")
    expect(stop).to_be_hidden()
    until(lambda: fake.requests[1].closed_early, "the request to the model closed")
