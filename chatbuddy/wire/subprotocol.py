"""The chat socket's subprotocol, and the tokens carried in its offer.

A browser cannot set headers on a WebSocket handshake, but it can offer
subprotocols; the page offers ``chatbuddy.v1`` and, when it has one, its
session token as ``chatbuddy.token.<token>`` and the customer's signed
identity (a JWT from the shop's site) as ``chatbuddy.jwt.<JWT>``. The server
answers with ``chatbuddy.v1`` only, so no token is ever echoed, and they stay
out of the URL, where proxies and CDNs log it. (``?session_token=`` still
works but is deprecated: see docs/protocol.md.)
"""

from __future__ import annotations

#: The subprotocol the server selects; a client offering a token must offer it too.
SUBPROTOCOL = "chatbuddy.v1"

#: The prefix of the offered "subprotocol" that carries the session token.
TOKEN_PREFIX = "chatbuddy.token."  # noqa: S105 - a prefix, not a secret


#: The prefix of the offered "subprotocol" that carries the customer's signed identity.
IDENTITY_PREFIX = "chatbuddy.jwt."


def offer(token: str | None, identity: str | None = None) -> list[str]:
    """The subprotocols a client offers, with its session token and signed identity
    if it has them."""
    names = [SUBPROTOCOL]
    if token:
        names.append(TOKEN_PREFIX + token)
    if identity:
        names.append(IDENTITY_PREFIX + identity)
    return names


def offered_token(subprotocols: list[str]) -> str | None:
    """The session token in an offer (the first, if a client sent several)."""
    return _offered(subprotocols, TOKEN_PREFIX)


def offered_identity(subprotocols: list[str]) -> str | None:
    """The signed identity (a JWT) in an offer (the first, if a client sent several)."""
    return _offered(subprotocols, IDENTITY_PREFIX)


def _offered(subprotocols: list[str], prefix: str) -> str | None:
    for name in subprotocols:
        if name.startswith(prefix):
            return name[len(prefix) :] or None
    return None
