"""Secrets: session tokens and admin tokens, how they are made, stored and compared.

A session token is 256 random bits; the store keeps only its SHA-256, so a
dump of the store opens no session. Comparisons take constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    """A fresh secret (a session's token or an admin token): 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The form in which a session token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def token_matches_hash(token_hash: str, given: str | None) -> bool:
    """Whether ``given`` is the token whose hash is ``token_hash`` (constant time)."""
    if not given:
        return False
    return hmac.compare_digest(token_hash, hash_token(given))
