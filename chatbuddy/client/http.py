"""HTTP and WebSocket requests to a server, with network failures turned into
:class:`chatbuddy.errors.ClientFailure` subclasses that say what to do."""

from __future__ import annotations

import json

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

from chatbuddy.client.target import Target
from chatbuddy.errors import AccessRefused, ClientFailure, Conflict, NotFound, ServerUnreachable

CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 15.0


def failure(error: Exception, target: Target) -> ClientFailure:
    """The ClientFailure that explains a network error."""
    if not isinstance(error, HTTPClientError) or error.code == 599:
        return ServerUnreachable(target.url)
    code = error.code
    kind, message = error_body(error)
    if code == 401 and kind is not None and kind.startswith("identity_"):
        message = (
            f"{target.url} refused the customer's signed identity ({message}); "
            "give one the shop's site issued, with --identity-file or CHATBUDDY_IDENTITY"
        )
        return AccessRefused(message, status=code, error_type=kind)
    if code == 401:
        message = (
            f"{target.url} refused the admin token ({message}); "
            "pass the right one with --token or CHATBUDDY_ADMIN_TOKEN"
        )
        return AccessRefused(message, status=code, error_type=kind)
    if code == 403:
        return AccessRefused(message, status=code, error_type=kind)
    if code == 404:
        return NotFound(message, status=code, error_type=kind)
    if code == 409:
        return Conflict(message, status=code, error_type=kind)
    return ClientFailure(f"server answered {code}: {message}", status=code, error_type=kind)


def error_body(error: HTTPClientError) -> tuple[str | None, str]:
    """``(error.type, error.message)`` of the server's JSON error body, else the HTTP reason."""
    try:
        body = json.loads(error.response.body) if error.response is not None else {}
        return str(body["error"]["type"]), str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return None, error.message or f"HTTP {error.code}"


async def fetch(target: Target, request: HTTPRequest) -> HTTPResponse:
    try:
        return await AsyncHTTPClient().fetch(request)
    except (HTTPClientError, OSError) as error:
        raise failure(error, target) from None


async def open_socket(
    target: Target, request: HTTPRequest, *, subprotocols: list[str] | None = None
) -> WebSocketClientConnection:
    try:
        return await websocket_connect(request, subprotocols=subprotocols)
    except (HTTPClientError, OSError) as error:
        raise failure(error, target) from None


async def reachable(target: Target) -> bool:
    """Whether a ChatBuddy answers at the target (``/healthz`` needs no token)."""
    request = HTTPRequest(target.http("/healthz"), connect_timeout=CONNECT_TIMEOUT)
    try:
        await AsyncHTTPClient().fetch(request)
    except HTTPClientError as error:
        return error.code != 599
    except OSError:
        return False
    return True
