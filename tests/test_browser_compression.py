"""Compression in a real browser: Chromium offers permessage-deflate, a server
started with --compression takes it with its own window limits, and the page
chats as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser import DESKTOP, WAIT_MS, running_browser
from tests.processes import LiveServer, serve_env, start_server

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with running_browser() as browser:
        yield browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(serve_env(tmp_path, CHATBUDDY_COMPRESSION="1"), log=tmp_path / "server.log")
    yield live
    live.stop()


def test_the_page_chats_over_a_compressed_socket(browser: Browser, server: LiveServer) -> None:
    context = browser.new_context(locale="hu-HU", viewport=DESKTOP)
    page = context.new_page()
    # The handshake as the browser saw it (Playwright shows no WebSocket headers).
    offers: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    devtools = context.new_cdp_session(page)
    devtools.on("Network.webSocketWillSendHandshakeRequest", lambda e: offers.append(e))
    devtools.on("Network.webSocketHandshakeResponseReceived", lambda e: answers.append(e))
    devtools.send("Network.enable")
    page.goto(server.url)
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")

    page.locator("#input").fill("Mennyi az ára a Samsung Galaxy S24-nek?")
    page.locator("#input").press("Enter")
    expect(page.locator(".msg.assistant .body").last).to_contain_text("Samsung Galaxy S24")

    offered = offers[0]["request"]["headers"]["Sec-WebSocket-Extensions"]
    # (Tornado writes the header's name as Sec-Websocket-Extensions.)
    answered = {k.lower(): v for k, v in answers[0]["response"]["headers"].items()}[
        "sec-websocket-extensions"
    ]
    assert offered.startswith("permessage-deflate")
    assert sorted(answered.split("; ")) == [
        "client_max_window_bits=11",
        "permessage-deflate",
        "server_max_window_bits=11",
    ]
    context.close()
