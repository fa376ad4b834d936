"""What the page and the widget are served with: framing, caching, CORS, refusals and their log."""

from __future__ import annotations

import gzip
import json
import logging
import re
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from chatbuddy.web.app import static_path
from chatbuddy.web.widget import asset_version
from tests.conftest import Http

SHOP = "https://shop.example"  # allowed by the tests' settings (conftest.py)
STRANGER = "https://evil.example"


async def config(http: Http, origin: str | None) -> tuple[int, dict[str, str], dict[str, object]]:
    headers = {"Origin": origin} if origin else {}
    response = await http.fetch("/widget/config", headers=headers)
    return response.code, dict(response.headers), json.loads(response.body)


async def test_the_page_may_be_framed_by_no_site(http: Http) -> None:
    response = await http.fetch("/")
    assert response.code == 200
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-cache"  # unversioned: revalidated


async def test_the_favicon_answers(http: Http) -> None:
    response = await http.fetch("/favicon.ico")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("image/")
    assert response.body[:4] == b"\x00\x00\x01\x00"  # an ICO file


async def test_the_loader_is_public_and_cached_briefly(http: Http) -> None:
    response = await http.fetch("/widget.js")
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"


async def test_an_allowed_shop_is_told_where_the_frame_is(http: Http) -> None:
    code, headers, body = await config(http, SHOP)
    assert code == 200
    assert body == {"frame": f"/static/v/{asset_version(static_path())}/widget.html"}
    assert headers["Access-Control-Allow-Origin"] == SHOP
    assert headers["Vary"] == "Origin"


async def test_a_stranger_is_refused_the_widget_with_advice_and_a_log_line(
    http: Http, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "chatbuddy.connections")
    code, headers, body = await config(http, STRANGER)
    assert code == 403
    assert headers["Access-Control-Allow-Origin"] == STRANGER  # so its page can read why
    assert body["error"] == {
        "type": "origin_not_allowed",
        "message": f"a page of {STRANGER!r} may not embed ChatBuddy: start the server with "
        f"--allowed-origin {STRANGER} (or add it to CHATBUDDY_ALLOWED_ORIGINS)",
    }
    assert f"widget refused for origin {STRANGER!r}: not allowed with --allowed-origin" in (
        caplog.text
    )
    code, _, _ = await config(http, None)
    assert code == 403


async def test_the_frame_may_be_framed_by_exactly_the_allowed_origins(http: Http) -> None:
    _, _, body = await config(http, SHOP)
    response = await http.fetch(str(body["frame"]))
    assert response.code == 200
    policy = response.headers["Content-Security-Policy"]
    assert policy.endswith(f"; frame-ancestors {SHOP}")
    assert "default-src 'self'" in policy
    assert "X-Frame-Options" not in response.headers
    assert response.headers["Cache-Control"] == "no-cache"  # a change of origins applies at once


async def test_versioned_assets_are_cached_for_a_year_and_an_old_version_redirects(
    http: Http,
) -> None:
    version = asset_version(static_path())
    response = await http.fetch(f"/static/v/{version}/view.js")
    assert response.code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["Content-Type"] == "text/javascript"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]

    old = await http.fetch("/static/v/000000000000/view.js", follow_redirects=False)
    assert old.code == 302
    assert old.headers["Location"] == f"/static/v/{version}/view.js"
    assert old.headers["Cache-Control"] == "no-store"
    for bad in ("/static/v/000000000000/..%2Fsetup.py", f"/static/v/{version}/nope.js"):
        assert (await http.fetch(bad)).code == 404


def test_the_version_changes_with_any_file_of_the_folder(tmp_path: Path) -> None:
    folder = tmp_path
    (folder / "a.js").write_text("one")
    first = asset_version(folder)
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    (folder / "a.js").write_text("two")
    assert asset_version(folder) != first


async def test_a_refused_origin_is_logged_with_its_reason_and_never_the_query(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "chatbuddy.connections")
    request = HTTPRequest(
        f"ws://127.0.0.1:{port}/ws/chat/s-refused?session_token=SECRET-TOKEN&user_id=anna",
        headers={"Origin": STRANGER, "Sec-Fetch-Site": "cross-site"},
    )
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(request)
    assert refused.value.code == 403
    assert f"refused origin {STRANGER!r}: not this server's own and not allowed" in caplog.text
    assert "SECRET-TOKEN" not in caplog.text
    assert "session_token" not in caplog.text


async def test_an_origin_written_in_capitals_by_a_client_is_still_the_shop(port: int) -> None:
    request = HTTPRequest(
        f"ws://127.0.0.1:{port}/ws/chat/s-capitals",
        headers={"Origin": "https://Shop.Example", "Sec-Fetch-Site": "cross-site"},
    )
    ws = await websocket_connect(request)
    assert "connection_established" in str(await ws.read_message())
    ws.close()


#: What the widget may weigh, gzipped, as docs/widget.md states: the loader, on
#: every page of a shop, and the frame's files, fetched once per release.
LOADER_BUDGET = 4 * 1024
FRAME_BUDGET = 32 * 1024
FRAME_FILES = re.compile(r'(?:href|src)="([a-z-]+\.(?:css|js))"')


def test_the_widget_stays_small_gzipped() -> None:
    static = Path(static_path())
    frame_page = (static / "widget.html").read_text()
    # The frame's modules: the ones it names, and the ones they import.
    names = {"widget.html", *FRAME_FILES.findall(frame_page)}
    for module in list(names):
        if module.endswith(".js"):
            names |= set(re.findall(r'from "\./([a-z-]+\.js)"', (static / module).read_text()))
    assert {"widget-frame.js", "view.js", "connection.js", "chat.css"} <= names
    frame = sum(len(gzip.compress((static / name).read_bytes(), 9)) for name in names)
    loader = len(gzip.compress((static / "widget.js").read_bytes(), 9))
    assert loader <= LOADER_BUDGET, loader
    assert frame <= FRAME_BUDGET, frame
