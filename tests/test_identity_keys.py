"""RS256 and ES256 identities, verified with the shop's JSON Web Key Set, which a real
local HTTP server serves (the identity provider we cannot reach here)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chatbuddy.settings import Settings
from tests.conftest import ADMIN_TOKEN, Connect
from tests.helpers import eventually, refused

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
NEW_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: Any, kid: str, algorithm: str) -> dict[str, Any]:
    maker = jwt.algorithms.RSAAlgorithm if algorithm == "RS256" else jwt.algorithms.ECAlgorithm
    jwk: dict[str, Any] = json.loads(maker.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": algorithm}


def sign(key: Any, kid: str | None, algorithm: str, subject: str = "anna") -> str:
    headers = {"kid": kid} if kid is not None else {}
    payload = {"sub": subject, "exp": int(time.time()) + 300}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def hs256_by_hand(header: dict[str, str], secret: bytes) -> str:
    """An HS256 token made without PyJWT, which refuses to sign with a public key."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    payload = {"sub": "anna", "exp": int(time.time()) + 300}
    signed = part(json.dumps(header).encode()) + "." + part(json.dumps(payload).encode())
    return signed + "." + part(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


class Provider:
    """The shop's identity provider: serves its key set and counts the requests."""

    def __init__(self) -> None:
        self.keys = [public_jwk(RSA_KEY, "rsa-1", "RS256"), public_jwk(EC_KEY, "ec-1", "ES256")]
        self.requests = 0
        self.up = True
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        provider = self

        class KeysHandler(tornado.web.RequestHandler):
            def get(self) -> None:
                provider.requests += 1
                if not provider.up:
                    self.set_status(503)
                    return
                self.set_header("Content-Type", "application/json")
                self.finish(json.dumps({"keys": provider.keys}))

        self.server = tornado.httpserver.HTTPServer(
            tornado.web.Application([(r"/.well-known/jwks.json", KeysHandler)])
        )
        self.server.add_sockets(sockets)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    running = Provider()
    yield running
    running.server.stop()


@pytest.fixture
def refetch() -> float:
    """How often an unknown key id may fetch the set again (tests that rotate lower it)."""
    return 3600.0


@pytest.fixture
def settings(provider: Provider, refetch: float) -> Settings:
    return Settings(
        port=0,
        admin_token=ADMIN_TOKEN,
        jwt_jwks_url=provider.url,
        jwks_min_refetch=refetch,
        new_sessions_per_minute=0,
    )


@pytest.mark.parametrize(
    ("key", "kid", "algorithm"), [(RSA_KEY, "rsa-1", "RS256"), (EC_KEY, "ec-1", "ES256")]
)
async def test_a_token_signed_with_a_key_of_the_set_is_let_in(
    connect: Connect, key: Any, kid: str, algorithm: str
) -> None:
    client = await connect(f"keys-{algorithm}", identity=sign(key, kid, algorithm))
    assert (await client.greeting())["user_id"] == "anna"


async def test_the_keys_are_fetched_once_for_many_customers(
    connect: Connect, provider: Provider
) -> None:
    for number in range(10):
        client = await connect(f"many-{number}", identity=sign(RSA_KEY, "rsa-1", "RS256"))
        await client.greeting()
    assert provider.requests == 1


@pytest.mark.parametrize("refetch", [0.0])
async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    connect: Connect, provider: Provider
) -> None:
    client = await connect("before", identity=sign(RSA_KEY, "rsa-1", "RS256"))
    await client.greeting()
    provider.keys = [public_jwk(NEW_RSA_KEY, "rsa-2", "RS256")]
    rotated = await connect("after", identity=sign(NEW_RSA_KEY, "rsa-2", "RS256"))
    assert (await rotated.greeting())["user_id"] == "anna"
    assert provider.requests == 2


async def test_made_up_key_ids_do_not_make_the_server_hammer_the_provider(
    port: int, connect: Connect, provider: Provider
) -> None:
    client = await connect("first", identity=sign(RSA_KEY, "rsa-1", "RS256"))
    await client.greeting()
    for number in range(20):
        failure = await refused(
            port, f"forged-{number}", identity=sign(RSA_KEY, f"x{number}", "RS256")
        )
        assert (failure.status, failure.error_type) == (401, "identity_invalid")
        assert "no RS256 key with the id" in failure.message
    assert provider.requests == 1


async def test_a_token_signed_by_another_key_is_refused(port: int) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    failure = await refused(port, "stranger", identity=sign(stranger, "rsa-1", "RS256"))
    assert (failure.status, failure.error_type) == (401, "identity_invalid")
    assert "signature does not verify" in failure.message


async def test_a_token_hmac_signed_with_the_public_key_is_refused(port: int) -> None:
    """The algorithm-confusion attack: the public key used as an HS256 secret."""
    public = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = hs256_by_hand({"alg": "HS256", "kid": "rsa-1"}, public)
    failure = await refused(port, "confused", identity=forged)
    assert (failure.status, failure.error_type) == (401, "identity_invalid")
    assert "accepts RS256, ES256" in failure.message


async def test_a_token_without_a_key_id_uses_the_one_key_of_its_algorithm(
    connect: Connect,
) -> None:
    client = await connect("no-kid", identity=sign(EC_KEY, None, "ES256"))
    assert (await client.greeting())["user_id"] == "anna"


class TestProviderDown:
    @pytest.fixture
    async def provider(self) -> AsyncIterator[Provider]:
        running = Provider()
        running.up = False
        yield running
        running.server.stop()

    @pytest.mark.parametrize("refetch", [0.0])
    async def test_customers_are_told_to_retry_until_the_keys_come(
        self, port: int, connect: Connect, provider: Provider
    ) -> None:
        await eventually(lambda: provider.requests >= 1, "the first fetch")
        failure = await refused(port, "early", identity=sign(RSA_KEY, "rsa-1", "RS256"))
        assert (failure.status, failure.error_type) == (503, "identity_unavailable")
        provider.up = True
        client = await connect("later", identity=sign(RSA_KEY, "rsa-1", "RS256"))
        assert (await client.greeting())["user_id"] == "anna"


class TestStaleKeys:
    @pytest.fixture
    def settings(self, provider: Provider) -> Settings:
        return Settings(
            port=0, admin_token=ADMIN_TOKEN, jwt_jwks_url=provider.url, jwks_refresh=0.0
        )

    async def test_stale_keys_serve_while_they_are_fetched_again(
        self, connect: Connect, provider: Provider
    ) -> None:
        await eventually(lambda: provider.requests == 1, "the first fetch")
        client = await connect("stale-1", identity=sign(RSA_KEY, "rsa-1", "RS256"))
        await client.greeting()
        await eventually(lambda: provider.requests == 2, "a fetch in the background")
