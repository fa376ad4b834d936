"""A signed-in customer in the widget, in a real browser: the shop's page gives the
widget a token through ChatBuddy.identify(), the customer gets their own order's
details without a proof, and when the token expires the widget fetches a fresh
one and carries on in the same conversation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    FrameLocator,
    Page,
    expect,
)

from tests.browser import DESKTOP, WAIT_MS, ShopSite, running_browser
from tests.processes import LiveServer, serve_env, start_server

expect.set_options(timeout=WAIT_MS)
SECRET = "the-shop-and-chatbuddy-share-this-secret-0123456789"
FRAME = "iframe[title=ChatBuddy]"
#: How long each token the shop issues lives, in seconds: the widget outlives several.
TOKEN_LIFETIME = 3


def issue_token() -> str:
    """What the shop's server does for its signed-in customer, anna."""
    return jwt.encode(
        {"sub": "anna", "exp": int(time.time()) + TOKEN_LIFETIME}, SECRET, algorithm="HS256"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with running_browser(partitioned_storage=True) as browser:
        yield browser


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[ShopSite, LiveServer]]:
    shop = ShopSite()
    shop.signed_in = issue_token
    chat = start_server(
        serve_env(
            tmp_path,
            CHATBUDDY_ALLOWED_ORIGINS=shop.origin,
            CHATBUDDY_JWT_SECRET=SECRET,
            CHATBUDDY_JWT_LEEWAY="0",
        ),
        log=tmp_path / "chat.log",
    )
    shop.serve(chat.url)
    try:
        yield shop, chat
    finally:
        shop.stop()
        chat.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(locale="hu-HU", viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    yield context
    context.close()


def ask(widget: FrameLocator, text: str) -> None:
    widget.locator("#input").fill(text)
    widget.locator("#input").press("Enter")


def open_chat(page: Page) -> FrameLocator:
    widget = page.frame_locator(FRAME)
    widget.locator("#launcher").click()
    expect(widget.locator("#status")).to_have_attribute("data-state", "connected")
    return widget


def test_a_signed_in_customer_gets_their_order_and_a_fresh_token_when_it_expires(
    context: BrowserContext, site: tuple[ShopSite, LiveServer], tmp_path: Path
) -> None:
    shop, _ = site
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(shop.url())
    widget = open_chat(page)

    ask(widget, "Hol tart a 10041 rendelésem?")
    expect(widget.locator(".msg.assistant .body").last).to_contain_text("feldolgozás alatt")

    # The token expires: the server closes (4004), the widget asks the shop for a
    # fresh one, and the conversation goes on in the same session.
    asked = page.locator("html").get_attribute("data-tokens-asked")
    expect(page.locator("html")).not_to_have_attribute("data-tokens-asked", asked or "")
    expect(widget.locator("#status")).to_have_attribute("data-state", "connected")
    ask(widget, "Hol tart a 10041 rendelésem?")
    expect(widget.locator(".msg.assistant .body")).to_have_count(2)
    expect(widget.locator(".msg.assistant .body").last).to_contain_text("feldolgozás alatt")
    assert errors == []
    assert "code=4004 by server" in (tmp_path / "chat.log").read_text()


def test_the_signed_token_never_reaches_the_shops_storage_or_the_url(
    context: BrowserContext, site: tuple[ShopSite, LiveServer]
) -> None:
    shop, _ = site
    page = context.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(shop.url())
    widget = open_chat(page)
    ask(widget, "Hol tart a 10041 rendelésem?")
    expect(widget.locator(".msg.assistant .body").last).to_contain_text("feldolgozás alatt")
    assert sockets
    assert all("eyJ" not in url for url in sockets)  # a JWT starts with eyJ
    stored = page.evaluate("JSON.stringify(Object.entries(localStorage))")
    assert "eyJ" not in stored
