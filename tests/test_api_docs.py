"""/openapi.json, /asyncapi.json and /docs against a real server: complete, valid, true.

Every route is documented (or is a page, an asset or a socket), every live
answer matches the model its schema was made from, every message type is in
the wire models, docs/protocol.md and asyncapi.json, and /docs renders in Chromium
offline, under the page's CSP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.web
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from playwright.sync_api import Browser, ConsoleMessage, Request, expect, sync_playwright
from pydantic import BaseModel

from chatbuddy.server import Server
from chatbuddy.wire import api
from chatbuddy.wire.asyncapi import client_models, event_models, server_models, wire_type
from chatbuddy.wire.client_frames import CLIENT_MESSAGE_TYPES
from chatbuddy.wire.events import EVENT_TYPES
from tests.browser import WAIT_MS, launch
from tests.conftest import ADMIN_TOKEN, Connect, Http
from tests.processes import LiveServer, serve_env, start_server

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_DOC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")

#: Routes that are not JSON endpoints: pages, assets, sockets, and the documents themselves.
NOT_API = {
    "/",
    "/favicon.ico",
    "/static/v/0123456789ab/chat.js",
    "/static/chat.js",
    "/widget.js",
    "/ws/chat/s1",
    "/ws/admin/tail",
    "/openapi.json",
    "/asyncapi.json",
    "/docs",
    "/docs/assets/swagger-ui.css",
}


async def fetch_json(http: Http, path: str, **options: Any) -> tuple[int, Any]:
    response = await http.fetch(path, **options)
    return response.code, json.loads(response.body)


async def test_openapi_json_is_a_valid_openapi_document(http: Http) -> None:
    code, document = await fetch_json(http, "/openapi.json")
    assert code == 200
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_route_is_documented_or_is_not_an_api(server: Server) -> None:
    from chatbuddy.web.operations import OPERATIONS

    documented = {re.sub(r"\{[^}]+\}", "s1", o.path): o for o in OPERATIONS}
    router = server.app.wildcard_router
    seen: set[str] = set()
    for rule in router.rules:
        pattern = rule.matcher.regex.pattern  # type: ignore[attr-defined]
        paths = [p for p in (*documented, *NOT_API) if re.fullmatch(pattern.rstrip("$"), p)]
        assert paths, f"route {pattern!r} is neither in OPERATIONS nor NOT_API"
        seen.update(paths)
        for path in paths:
            if path in documented:
                operation = documented[path]
                assert rule.target is operation.handler, path
                handler: type[tornado.web.RequestHandler] = operation.handler
                assert operation.method.upper() in handler.SUPPORTED_METHODS
                assert getattr(handler, operation.method) is not getattr(
                    tornado.web.RequestHandler, operation.method
                ), f"{handler.__name__} does not implement {operation.method}"
    assert set(documented) <= seen, "an operation documents a path no route serves"


async def test_every_live_answer_matches_the_model_it_is_documented_with(
    http: Http, connect: Connect
) -> None:
    admin = {"headers": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}
    tab = await connect("d-1", user_id="anna")
    await tab.greeting()
    await tab.chat("d-1", "Szia!")

    def check(model: type[BaseModel], answer: tuple[int, Any], status: int = 200) -> None:
        assert answer[0] == status, answer
        model.model_validate(answer[1])  # unknown fields are errors (extra="forbid")

    check(api.Stats, await fetch_json(http, "/api/v1/websocket/stats", **admin))
    check(api.SessionsPage, await fetch_json(http, "/api/v1/sessions", **admin))
    check(api.SessionDetail, await fetch_json(http, "/api/v1/sessions/d-1", **admin))
    check(api.ErrorBody, await fetch_json(http, "/api/v1/sessions/nope", **admin), 404)
    check(api.ErrorBody, await fetch_json(http, "/api/v1/sessions?limit=0", **admin), 400)
    check(api.ErrorBody, await fetch_json(http, "/api/v1/websocket/stats"), 401)
    check(api.Health, await fetch_json(http, "/healthz"))
    check(api.Health, await fetch_json(http, "/health"))
    check(api.Readiness, await fetch_json(http, "/readyz"))
    shop = {"headers": {"Origin": "https://shop.example"}}
    check(api.WidgetConfig, await fetch_json(http, "/widget/config", **shop))
    check(api.ErrorBody, await fetch_json(http, "/widget/config"), 403)
    chat = {
        "method": "POST",
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"session_id": "d-2", "message": "Szia!", "context": {"page": "/"}}),
    }
    check(api.ChatReply, await fetch_json(http, "/api/v1/chat", **chat))
    chat["body"] = json.dumps({"session_id": "d-2", "message": "again"})
    check(api.ErrorBody, await fetch_json(http, "/api/v1/chat", **chat), 403)

    export = await http.fetch("/api/v1/export", **admin)
    assert export.headers["Content-Type"].startswith("application/x-ndjson")
    lines = [api.ExportLine.model_validate_json(line) for line in export.body.splitlines()]
    assert [type(line.root) for line in lines] == [api.Transcript] * 2 + [api.ExportEnd]
    check(api.ErrorBody, await fetch_json(http, "/api/v1/export?since=soon", **admin), 400)
    erase = {"method": "DELETE", **admin}
    check(api.Erased, await fetch_json(http, "/api/v1/sessions/d-2", **erase))
    check(api.ErrorBody, await fetch_json(http, "/api/v1/sessions/d-2", **erase), 404)
    check(api.Erased, await fetch_json(http, "/api/v1/users/anna/sessions", **erase))


# -- the WebSocket protocol ------------------------------------------------------


def _documented_types() -> tuple[set[str], set[str]]:
    examples = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", PROTOCOL_DOC, re.S)]
    frames = [e for e in examples if "type" in e]
    return {e["type"] for e in frames if "data" not in e}, {
        e["type"] for e in frames if "data" in e
    }


async def test_every_message_type_is_in_the_models_the_docs_and_asyncapi(http: Http) -> None:
    code, document = await fetch_json(http, "/asyncapi.json")
    assert code == 200
    assert document["asyncapi"] == "3.0.0"
    chat = document["channels"]["chat"]["messages"]
    published = {document["components"]["messages"][key.split("/")[-1]]["name"] for key in chat}
    client = {wire_type(m) for m in client_models()}
    server = {wire_type(m) for m in server_models()}
    documented_client, documented_server = _documented_types()
    assert client == set(CLIENT_MESSAGE_TYPES) == documented_client
    assert server == documented_server
    assert published == client | server
    sends = {
        document["components"]["messages"][ref["$ref"].split("/")[-1]]["name"]
        for operation in document["operations"].values()
        if operation["action"] == "send"
        for ref in operation["messages"]
    }
    assert sends == client
    tail = document["channels"]["adminTail"]["messages"]
    assert {wire_type(m) for m in event_models()} == set(EVENT_TYPES)
    assert {document["components"]["messages"][key]["name"] for key in tail} == set(EVENT_TYPES)


def _validator(document: dict[str, Any], model: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{model}", "components": document["components"]}
    return Draft202012Validator(schema)


FRAMES = [
    example
    for example in (json.loads(b) for b in re.findall(r"```json\n(.*?)```", PROTOCOL_DOC, re.S))
    if "type" in example  # not the refusal body nor the stats document
]


@pytest.mark.parametrize("example", FRAMES, ids=lambda e: str(e["type"]))
def test_every_documented_frame_is_valid_under_the_published_schema(
    example: dict[str, Any],
) -> None:
    from chatbuddy import __version__
    from chatbuddy.wire.asyncapi import document

    published = document(__version__)
    models = client_models() if "data" not in example else server_models()
    model = next(m for m in models if wire_type(m) == example["type"])
    errors = list(_validator(published, model.__name__).iter_errors(example))
    assert errors == [], [e.message for e in errors]


# -- /docs in a browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        chromium = launch(driver)
        yield chromium
        chromium.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(serve_env(tmp_path), log=tmp_path / "server.log")
    yield server
    server.stop()


def test_docs_renders_every_operation_offline_under_the_pages_csp(
    browser: Browser, live: LiveServer
) -> None:
    from chatbuddy.web.operations import OPERATIONS

    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    elsewhere: list[str] = []
    origin = live.url.rstrip("/")

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(message.text)

    def on_request(request: Request) -> None:
        if not request.url.startswith(origin + "/") and not request.url.startswith("data:"):
            elsewhere.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", on_request)
    response = page.goto(origin + "/docs")
    assert response is not None
    assert "script-src" not in (policy := response.headers["content-security-policy"])
    assert "default-src 'self'" in policy  # no inline script or style allowed
    operations = page.locator(".opblock")
    expect(operations).to_have_count(len(OPERATIONS))
    page.locator(".opblock-summary", has_text="/api/v1/chat").click()
    expect(page.locator(".opblock-body")).to_contain_text("session_id")
    expect(page.locator(".opblock-body")).to_contain_text("X-Session-Token")
    page.close()
    assert problems == []
    assert elsewhere == []


MIGRATING = (ROOT / "docs" / "migrating.md").read_text(encoding="utf-8")


def test_the_http_chat_examples_of_the_migration_guide_fit_the_models() -> None:
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", MIGRATING, re.S)]
    assert [type(b) for b in blocks] == [dict, dict]
    request, reply = blocks
    assert api.ChatRequest.model_validate(request).message
    assert set(api.ChatReply.model_validate(reply).model_dump()) == set(reply)
