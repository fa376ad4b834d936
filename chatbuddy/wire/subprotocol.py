"""The chat socket's subprotocol, and the session token carried in its offer.

A browser cannot set headers on a WebSocket handshake, but it can offer
subprotocols; the page offers ``chatbuddy.v1`` and, when it has one, its
session token as ``chatbuddy.token.<token>``. The server answers with
``chatbuddy.v1`` only, so the token is never echoed, and it stays out of the
URL, where proxies and CDNs log it. (``?session_token=`` still works but is
deprecated: see docs/protocol.md.)
"""

from __future__ import annotations

#: The subprotocol the server selects; a client offering a token must offer it too.
SUBPROTOCOL = "chatbuddy.v1"

#: The prefix of the offered "subprotocol" that carries the session token.
TOKEN_PREFIX = "chatbuddy.token."  # noqa: S105 - a prefix, not a secret


def offer(token: str | None) -> list[str]:
    """The subprotocols a client offers, with its token if it has one."""
    return [SUBPROTOCOL, TOKEN_PREFIX + token] if token else [SUBPROTOCOL]


def offered_token(subprotocols: list[str]) -> str | None:
    """The session token in an offer (the first, if a client sent several)."""
    for name in subprotocols:
        if name.startswith(TOKEN_PREFIX):
            return name[len(TOKEN_PREFIX) :] or None
    return None
