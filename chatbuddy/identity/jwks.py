"""A JSON Web Key Set, fetched from the shop's identity provider and cached.

The keys are fetched once at start and again when they are older than
:data:`REFRESH_SECONDS` (in the background: tokens are checked with the keys
at hand meanwhile), and at once for a token whose key id is not among them
(the provider rotated its keys), but at most once per
:data:`MIN_REFETCH_SECONDS`, so that tokens with made-up key ids cannot make
this server hammer the provider. A failed fetch keeps the keys it had. (Both
intervals are the defaults; tests shorten them.)

Fetched with Tornado's asynchronous client rather than PyJWT's ``PyJWKClient``,
whose fetch blocks: it would stall every connection of the process while the
provider answers. PyJWT still parses the keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from urllib.parse import urlsplit

import jwt
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

log = logging.getLogger(__name__)

#: Keys older than this are fetched again (in the background), in seconds.
REFRESH_SECONDS = 600.0
#: Fetches for an unknown key id are at most this often, in seconds.
MIN_REFETCH_SECONDS = 30.0
#: How long one fetch may take, in seconds.
FETCH_TIMEOUT = 5.0
#: The largest key set read (a real one is a few kilobytes).
MAX_BYTES = 256 * 1024
#: The algorithms a key of the set may be used with.
ALGORITHMS = frozenset({"RS256", "ES256"})


class KeysUnavailable(Exception):
    """No keys could be fetched yet."""


class KeySet:
    """The signing keys at ``url``, by key id."""

    def __init__(
        self,
        url: str,
        *,
        refresh: float = REFRESH_SECONDS,
        min_refetch: float = MIN_REFETCH_SECONDS,
    ) -> None:
        # Where the key set is (https, or http on this machine).
        self.url = url
        # Keys older than this many seconds are fetched again, in the background.
        self._refresh_after = refresh
        # An unknown key id fetches the set again at most this often, in seconds.
        self._min_refetch = min_refetch
        # The URL as logs show it: no query string.
        self._shown = urlsplit(url)._replace(query="", fragment="").geturl()
        # key id (or None for a key without one) -> key, from the last good fetch.
        self._keys: dict[str | None, jwt.PyJWK] = {}
        # When the last good fetch was, and the last attempt (time.monotonic()).
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        # The fetch in progress, shared by everyone who waits for it.
        self._fetching: asyncio.Task[None] | None = None
        # A client of our own: its body limit must not change the process's shared one.
        self._client: AsyncHTTPClient | None = None

    def start(self) -> None:
        """Fetch the keys now, in the background (errors are logged, and retried)."""
        self._refresh()

    async def close(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._fetching
        if self._client is not None:
            self._client.close()
            self._client = None

    async def key(self, kid: str | None, algorithm: str) -> jwt.PyJWK:
        """The key for a token's ``kid`` and ``alg``.

        Raises KeysUnavailable when no keys could be fetched, LookupError when
        the set has no such key (after fetching it again, if allowed).
        """
        now = time.monotonic()
        if self._fetched_at is not None and now - self._fetched_at > self._refresh_after:
            self._refresh()  # stale: fetch again, and use these meanwhile
        found = self._find(kid, algorithm)
        if found is not None:
            return found
        if self._fetching is None and (
            self._tried_at is None or now - self._tried_at >= self._min_refetch
        ):
            self._refresh()
        if self._fetching is not None:
            await asyncio.shield(self._fetching)
        if self._fetched_at is None:
            raise KeysUnavailable(f"the key set at {self._shown} could not be fetched")
        found = self._find(kid, algorithm)
        if found is None:
            raise LookupError(
                f"the key set has no {algorithm} key with the id {kid!r}"
                if kid is not None
                else f"the token names no key (kid) and the key set has no single {algorithm} key"
            )
        return found

    def _find(self, kid: str | None, algorithm: str) -> jwt.PyJWK | None:
        if kid is None:
            usable = [k for k in self._keys.values() if k.algorithm_name == algorithm]
            return usable[0] if len(usable) == 1 else None
        key = self._keys.get(kid)
        return key if key is not None and key.algorithm_name == algorithm else None

    def _refresh(self) -> None:
        if self._fetching is None:
            self._tried_at = time.monotonic()
            self._fetching = asyncio.create_task(self._fetch(), name="jwks-fetch")

    async def _fetch(self) -> None:
        try:
            self._keys = await self._download()
            self._fetched_at = time.monotonic()
            log.info("fetched %d signing keys from %s", len(self._keys), self._shown)
        except Exception as error:  # kept the old keys; the next token retries
            log.warning("cannot fetch the signing keys from %s: %s", self._shown, error)
        finally:
            self._fetching = None

    async def _download(self) -> dict[str | None, jwt.PyJWK]:
        if self._client is None:
            self._client = AsyncHTTPClient(force_instance=True, max_body_size=MAX_BYTES)
        request = HTTPRequest(
            self.url,
            connect_timeout=FETCH_TIMEOUT,
            request_timeout=FETCH_TIMEOUT,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        response = await self._client.fetch(request)
        return signing_keys(json.loads(response.body))


def signing_keys(document: object) -> dict[str | None, jwt.PyJWK]:
    """The RS256/ES256 signing keys of a JWKS document, by key id.

    Keys for encryption (``use: enc``), of other algorithms, or that PyJWT
    cannot read are left out; a set with none left is an error.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JSON Web Key Set (no 'keys' list)")
    keys: dict[str | None, jwt.PyJWK] = {}
    for data in document["keys"]:
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(data)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in ALGORITHMS:
            keys[data.get("kid") if isinstance(data.get("kid"), str) else None] = key
    if not keys:
        raise ValueError("the key set has no RS256 or ES256 signing key")
    return keys
