"""HTTP endpoints: stats, health, the page, and JSON errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError, HTTPResponse

from tests.conftest import ADMIN_TOKEN, Connect, Http

STATIC = Path(__file__).resolve().parent.parent / "static"


async def get(client: Http, path: str, token: str | None = ADMIN_TOKEN) -> HTTPResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response: HTTPResponse = await client.fetch(path, headers=headers, raise_error=False)
    return response


async def test_stats_have_the_seed_shape_and_count_live_connections(
    http: Http, connect: Connect
) -> None:
    anna1 = await connect("s-a", user_id="anna")
    token = (await anna1.greeting())["session_token"]
    anna2 = await connect("s-a", user_id="anna", session_token=token)
    await anna2.greeting()
    anon = await connect("s-b")
    await anon.greeting()
    await anon.chat("s-b", "hello")

    response = await get(http, "/api/v1/websocket/stats")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    doc = json.loads(response.body)
    assert doc["websocket_stats"] == {
        "total_connections": 3,
        "total_sessions": 2,
        "total_users": 1,
        "sessions": {"s-a": 2, "s-b": 1},
        "users": {"anna": 2},
    }
    assert doc["counters"]["messages_received"] == 1
    assert doc["counters"]["replies_sent"] == 1
    assert doc["counters"]["connections_opened"] == 3
    assert doc["uptime_seconds"] >= 0
    assert doc["timestamp"].endswith("Z")


async def test_a_closed_connection_leaves_the_stats(http: Http, connect: Connect) -> None:
    client = await connect("s-gone")
    await client.greeting()
    client.close()
    await client.closed()  # the server answered the close
    # The server forgets it as the close lands; each request yields to it (bounded).
    for _ in range(100):
        doc = json.loads((await get(http, "/api/v1/websocket/stats")).body)
        if doc["websocket_stats"]["total_connections"] == 0:
            break
    assert doc["websocket_stats"]["total_connections"] == 0
    assert doc["websocket_stats"]["sessions"] == {}


async def test_healthz_says_ok_without_a_token(http: Http) -> None:
    response = await get(http, "/healthz", token=None)
    assert (response.code, json.loads(response.body)) == (200, {"status": "ok"})


async def test_the_page_is_served_with_protective_headers(http: Http) -> None:
    response = await get(http, "/", token=None)
    assert response.code == 200
    assert b"<title>ChatBuddy</title>" in response.body
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    view = await get(http, "/static/view.js")
    assert view.code == 200
    assert b".textContent =" in view.body  # the page renders chat text as text
    assert b"innerHTML" not in view.body


@pytest.mark.parametrize("name", sorted(path.name for path in STATIC.glob("*.js")))
async def test_every_script_of_the_page_is_served_as_javascript(http: Http, name: str) -> None:
    response = await get(http, f"/static/{name}", token=None)
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/javascript"  # module scripts need it


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/static/missing.js"])
async def test_unknown_paths_get_a_json_404_without_a_traceback(http: Http, path: str) -> None:
    response = await get(http, path)
    assert response.code == 404
    assert b"Traceback" not in response.body
    # One error shape everywhere, the page's static files included.
    assert json.loads(response.body)["error"]["type"] == "not_found"


async def test_the_socket_refuses_a_foreign_origin(http: Http, port: int) -> None:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(
        f"ws://127.0.0.1:{port}/ws/chat/s-origin", headers={"Origin": "https://evil.example"}
    )
    with pytest.raises(HTTPClientError) as caught:
        await websocket_connect(request)
    assert caught.value.code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:{port}"},
        {"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "https://shop.example", "Sec-Fetch-Site": "cross-site"},
    ],
    ids=["same-host", "same-origin-fetch", "allowed-origin"],
)
async def test_the_socket_accepts_its_own_page_and_allowed_origins(
    port: int, headers: dict[str, str]
) -> None:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(
        f"ws://127.0.0.1:{port}/ws/chat/s-origin-ok",
        headers={k: v.format(port=port) for k, v in headers.items()},
    )
    ws = await websocket_connect(request)
    assert "connection_established" in str(await ws.read_message())
    ws.close()


async def test_a_cross_site_page_is_refused_even_with_a_matching_host(port: int) -> None:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(
        f"ws://127.0.0.1:{port}/ws/chat/s-origin-bad",
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    with pytest.raises(HTTPClientError) as caught:
        await websocket_connect(request)
    assert caught.value.code == 403
