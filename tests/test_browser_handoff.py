"""A person steps in, seen in a real browser: the customer's page in headless Chromium,
the operator driving the real `chatbuddy` CLI and the admin API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser import DESKTOP, WAIT_MS, accessibility_violations, running_browser
from tests.helpers import TIMEOUT
from tests.processes import LiveServer, serve_env, start_server

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with running_browser() as browser:
        yield browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(serve_env(tmp_path), "--agent", "echo", log=tmp_path / "server.log")
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
    page.goto(url)
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    return page


def session_of(page: Page) -> str:
    return str(json.loads(page.evaluate("localStorage.getItem('chatbuddy.session')"))["id"])


def say(page: Page, text: str) -> None:
    page.locator("#input").fill(text)
    page.locator("#input").press("Enter")


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The operator at their terminal."""
    done = subprocess.run(
        [sys.executable, "-m", "chatbuddy", *args],
        capture_output=True,
        text=True,
        env={**server.env, "CHATBUDDY_URL": server.url},
        timeout=4 * TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return done


def api(server: LiveServer, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The admin API, with the local server's admin token."""
    token = next(Path(server.env["CHATBUDDY_RUNTIME_DIR"]).glob(f"admin-{server.port}.token"))
    request = urllib.request.Request(  # noqa: S310 - our own server on loopback
        server.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {token.read_text().strip()}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
        return json.loads(response.read())


def eventually(check: Any, what: str) -> Any:
    """Poll ``check()`` until it returns something true (up to the tests' timeout)."""
    deadline = time.monotonic() + 2 * TIMEOUT
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


class Tail:
    """`chatbuddy tail --json` of one session, read line by line."""

    def __init__(self, server: LiveServer, session_id: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chatbuddy", "tail", "--json", "--session", session_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**server.env, "CHATBUDDY_URL": server.url},
        )
        assert self.process.stderr is not None
        assert "Following" in self.process.stderr.readline()

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        while True:
            line = stdout.readline()
            assert line, "the tail ended"
            event: dict[str, Any] = json.loads(line)
            if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(TIMEOUT)


def test_a_person_takes_over_talks_types_reads_and_gives_the_chat_back(
    context: BrowserContext, server: LiveServer
) -> None:
    page = open_chat(context, server.url)
    sid = session_of(page)
    say(page, "hello")
    reply = page.locator(".msg.assistant").first
    expect(reply.locator(".body")).to_have_text("hello")

    # 👍 on the assistant's reply: a labelled toggle, kept with the message.
    helpful = reply.get_by_role("button", name="Helpful reply")
    helpful.press("Enter")  # from the keyboard
    expect(helpful).to_have_attribute("aria-pressed", "true")
    stored = eventually(
        lambda: [
            m
            for m in api(server, "GET", f"/api/v1/sessions/{sid}")["messages"]
            if m.get("reaction")
        ],
        "the reaction stored",
    )
    assert stored[0]["reaction"] == "up"

    # "Talk to a person": the customer is on the waiting list.
    page.get_by_role("button", name="Talk to a person").click()
    expect(page.locator(".system-line")).to_have_text(
        ["We have asked a colleague to join; the assistant answers until then."]
    )
    waiting = json.loads(cli(server, "sessions", "--waiting", "--json").stdout)["waiting"]
    assert [w["session_id"] for w in waiting] == [sid]

    tail = Tail(server, sid)
    try:
        cli(server, "say", sid, "Hi, Anna here. How can I help?", "--as", "Anna")
        expect(page.locator(".system-line").last).to_have_text("Anna joined the conversation.")
        said = page.locator(".msg.operator")
        expect(said.locator(".operator-name")).to_have_text("Anna")
        expect(said.locator(".body")).to_have_text("Hi, Anna here. How can I help?")
        expect(page.get_by_role("button", name="Talk to a person")).to_be_disabled()
        # The page reports what it has shown; the operator sees it.
        shown = int(said.get_attribute("data-id") or 0)
        assert tail.event("read", message_id=shown)["session_id"] == sid

        # The customer types: the operator's tail says so.
        page.locator("#input").press_sequentially("I have a question")
        assert tail.event("typing", state="start")["session_id"] == sid
    finally:
        tail.stop()

    # The operator types: "Anna is typing…".
    api(server, "POST", f"/api/v1/sessions/{sid}/typing", {"operator": "Anna", "typing": True})
    expect(page.locator("#typing")).to_be_visible()
    expect(page.locator("#typing")).to_contain_text("Anna is typing…")
    api(server, "POST", f"/api/v1/sessions/{sid}/typing", {"operator": "Anna", "typing": False})
    expect(page.locator("#typing")).to_be_hidden()

    # While she holds it the assistant is silent; she reads it, and the page ticks it.
    page.locator("#input").press("Enter")
    mine = page.locator(".msg.user").last
    expect(mine.locator(".body")).to_have_text("I have a question")
    expect(mine).not_to_have_class("msg user pending")
    message_id = int(eventually(lambda: mine.get_attribute("data-id"), "the message's id"))
    api(
        server,
        "POST",
        f"/api/v1/sessions/{sid}/read",
        {"operator": "Anna", "message_id": message_id},
    )
    expect(mine.locator(".read-tick")).to_have_text("✓✓Read")
    expect(page.locator(".msg.assistant")).to_have_count(1)
    expect(page.locator("#typing")).to_be_hidden()

    said.get_by_role("button", name="Not helpful").click()
    expect(said.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    assert accessibility_violations(page) == []

    cli(server, "release", sid, "--as", "Anna")
    expect(page.locator(".system-line").last).to_have_text(
        "Anna left the conversation; the assistant answers again."
    )
    say(page, "back to the bot")
    expect(page.locator(".msg.assistant .body").last).to_have_text("back to the bot")
    stats = api(server, "GET", "/api/v1/websocket/stats")["reactions"]
    assert {(r["agent"], r["up"], r["down"]) for r in stats} == {("echo", 1, 0), ("operator", 0, 1)}


def test_a_reload_while_held_shows_who_is_there_and_their_messages_by_name(
    context: BrowserContext, server: LiveServer
) -> None:
    page = open_chat(context, server.url)
    sid = session_of(page)
    say(page, "hello")
    expect(page.locator(".msg.assistant")).to_have_count(1)
    cli(server, "say", sid, "Hello from Anna", "--as", "Anna")
    expect(page.locator(".msg.operator .body")).to_have_text("Hello from Anna")
    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    expect(page.locator(".msg.operator .operator-name")).to_have_text("Anna")
    expect(page.locator(".msg.operator .speaker")).to_have_text("Anna:")
    expect(page.locator(".system-line")).to_have_text(["Anna joined the conversation."])
    page.locator("#lang").click()  # names are not translated; our own words are
    expect(page.locator(".msg.operator .operator-name")).to_have_text("Anna")
    expect(page.get_by_role("button", name="Hasznos válasz").first).to_be_visible()
    assert accessibility_violations(page) == []
