"""Signed-in customers: a JWT in the subprotocol offer proves who the customer is, is
checked before the upgrade, and closes the connection when it expires."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import CliRunner

# setup.py maps cli/ to chatbuddy.cli; mypy checks that folder as "cli".
from chatbuddy.cli.main import cli  # type: ignore[import-not-found,unused-ignore]
from chatbuddy.client.launcher import launch_server
from chatbuddy.errors import ConfigurationError
from chatbuddy.server import Server
from chatbuddy.settings import Settings
from chatbuddy.wire.close_codes import Close
from tests.conftest import ADMIN_TOKEN, Connect
from tests.helpers import TIMEOUT, ChatClient, refused

SECRET = "a-shared-secret-of-the-shop-0123456789abcdef"


def sign(
    subject: str | None = "anna", *, expires_in: float = 300, key: str = SECRET, **claims: Any
) -> str:
    """A token the shop's site would issue, HS256 with the shared secret."""
    payload: dict[str, Any] = {"exp": int(time.time() + expires_in), **claims}
    if subject is not None:
        payload["sub"] = subject
    return jwt.encode(payload, key, algorithm="HS256")


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    return tmp_path / "audit.log"


@pytest.fixture
def settings(audit_file: Path) -> Settings:
    return Settings(
        port=0,
        admin_token=ADMIN_TOKEN,
        jwt_secret=SECRET,
        jwt_leeway=0,
        rate_limit=0,
        audit_log=str(audit_file),
    )


def audit(server: Server, path: Path) -> list[dict[str, Any]]:
    server.audit.flush()
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_signed_customers_user_is_the_tokens_subject(connect: Connect) -> None:
    client = await connect("signed-1", identity=sign("anna"))
    greeting = await client.greeting()
    assert greeting["user_id"] == "anna"


async def test_the_server_selects_its_subprotocol_and_never_echoes_the_token(
    connect: Connect,
) -> None:
    client = await connect("signed-2", identity=sign("anna"))
    await client.greeting()
    assert client.ws.selected_subprotocol == "chatbuddy.v1"


async def test_a_signed_customer_gets_their_own_orders_details_without_a_proof(
    connect: Connect,
) -> None:
    client = await connect("signed-3", identity=sign("anna"))
    await client.greeting()
    reply = await client.chat("signed-3", "Hol tart a 10041 rendelésem?")
    assert "feldolgozás alatt" in reply["content"]
    assert reply["metadata"]["found"] is True


async def test_a_signed_customer_never_gets_someone_elses_order(connect: Connect) -> None:
    client = await connect("signed-4", identity=sign("anna"))
    await client.greeting()
    reply = await client.chat("signed-4", "Hol tart a 10042 rendelésem?")
    assert "GLS" not in reply["content"]
    assert reply["metadata"]["proof"] == "asked"


async def test_without_a_token_the_order_needs_its_proof_as_before(connect: Connect) -> None:
    client = await connect("anonymous-1")
    greeting = await client.greeting()
    assert greeting["user_id"] is None
    reply = await client.chat("anonymous-1", "Hol tart a 10041 rendelésem?")
    assert "feldolgozás alatt" not in reply["content"]
    assert reply["metadata"]["proof"] == "asked"


async def test_a_user_id_label_is_not_a_signed_customer(port: int) -> None:
    failure = await refused(port, "label-1", user_id="anna")
    assert (failure.status, failure.error_type) == (401, "identity_required")


async def test_a_user_id_that_is_not_the_tokens_subject_is_refused(port: int) -> None:
    failure = await refused(port, "label-2", user_id="bela", identity=sign("anna"))
    assert (failure.status, failure.error_type) == (403, "session_access_denied")


@pytest.mark.parametrize(
    ("make", "reason", "said"),
    [
        # Tokens are made when the test runs (lambda), not when the module is collected:
        # a long suite would otherwise see them expire before they are offered.
        (lambda: sign("anna", key="another-secret-of-the-same-length-0123456789"),
         "identity_invalid", "signature does not verify"),
        (lambda: sign("anna", expires_in=-60), "identity_expired", "expired"),
        (lambda: jwt.encode({"sub": "anna"}, SECRET, algorithm="HS256"), "identity_invalid",
         "'exp'"),
        (lambda: sign(None), "identity_invalid", "'sub'"),
        (lambda: sign("anna@example.com"), "identity_invalid", "sub must be"),
        (lambda: sign("anna", nbf=int(time.time()) + 3600), "identity_invalid", "not valid yet"),
        (lambda: sign("anna", aud="another-shop"), "identity_invalid", "--jwt-audience"),
        (lambda: jwt.encode({"sub": "anna", "exp": int(time.time()) + 300}, "", algorithm="none"),
         "identity_invalid", "'none'"),
        (lambda: "not.a.jwt", "identity_invalid", "not a JWT"),
        (lambda: sign("anna", padding="x" * 8192), "identity_invalid", "over 8192 characters"),
    ],
    ids=["wrong-secret", "expired", "no-exp", "no-sub", "sub-not-an-id", "not-yet",
         "unexpected-aud", "alg-none", "garbage", "oversized"],
)  # fmt: skip
async def test_a_bad_token_is_refused_before_the_upgrade_with_its_reason(
    server: Server, port: int, audit_file: Path, make: Callable[[], str], reason: str, said: str
) -> None:
    token = make()
    failure = await refused(port, "bad-token", identity=token)
    assert (failure.status, failure.error_type) == (401, reason)
    assert said in failure.message
    records = [r for r in audit(server, audit_file) if r["event"] == "handshake_refused"]
    assert [(r["status"], r["reason"]) for r in records] == [(401, reason)]
    assert token not in json.dumps(audit(server, audit_file))


async def test_a_token_offered_without_the_subprotocol_is_refused(port: int) -> None:
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    with pytest.raises(HTTPClientError) as failure:
        await websocket_connect(
            HTTPRequest(f"ws://127.0.0.1:{port}/ws/chat/no-v1"),
            subprotocols=["chatbuddy.jwt." + sign("anna")],
        )
    assert failure.value.code == 400


async def test_an_open_connection_is_closed_with_4004_when_its_token_expires(
    server: Server, connect: Connect, audit_file: Path
) -> None:
    client = await connect("expiring-1", identity=sign("anna", expires_in=1.5))
    greeting = await client.greeting()
    assert await client.closed() == Close.IDENTITY_EXPIRED
    records = [r for r in audit(server, audit_file) if r["event"] == "disconnected"]
    assert [(r["code"], r["reason"]) for r in records] == [(4004, "identity_expired")]

    again = await connect(
        "expiring-1", session_token=greeting["session_token"], identity=sign("anna")
    )
    resumed = await again.greeting()
    assert resumed["resumed"] is True
    assert resumed["user_id"] == "anna"


async def test_a_signed_customers_session_opens_only_with_their_token(
    port: int, connect: Connect
) -> None:
    first = await connect("owned-1", identity=sign("anna"))
    token = (await first.greeting())["session_token"]
    first.close()
    without = await refused(port, "owned-1", session_token=token)
    assert (without.status, without.error_type) == (403, "session_access_denied")
    assert "signed-in customer" in without.message
    someone_else = await refused(port, "owned-1", session_token=token, identity=sign("bela"))
    assert (someone_else.status, someone_else.error_type) == (403, "session_access_denied")
    back = await connect("owned-1", session_token=token, identity=sign("anna"))
    assert (await back.greeting())["resumed"] is True


async def test_an_anonymous_session_does_not_become_a_signed_customers(
    port: int, connect: Connect
) -> None:
    first = await connect("anonymous-2")
    token = (await first.greeting())["session_token"]
    failure = await refused(port, "anonymous-2", session_token=token, identity=sign("anna"))
    assert (failure.status, failure.error_type) == (403, "session_access_denied")


class TestRequired:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, admin_token=ADMIN_TOKEN, jwt_secret=SECRET, jwt_required=True)

    async def test_a_customer_without_a_token_is_refused(self, port: int) -> None:
        failure = await refused(port, "anonymous-3")
        assert (failure.status, failure.error_type) == (401, "identity_required")

    async def test_a_signed_customer_is_let_in(self, connect: Connect) -> None:
        client = await connect("signed-5", identity=sign("anna"))
        assert (await client.greeting())["user_id"] == "anna"


class TestClockLeeway:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, admin_token=ADMIN_TOKEN, jwt_secret=SECRET, jwt_leeway=30)

    async def test_a_token_expired_within_the_leeway_is_let_in(self, connect: Connect) -> None:
        client = await connect("skewed-1", identity=sign("anna", expires_in=-10))
        assert (await client.greeting())["user_id"] == "anna"

    async def test_a_token_expired_past_the_leeway_is_refused(self, port: int) -> None:
        failure = await refused(port, "skewed-2", identity=sign("anna", expires_in=-40))
        assert (failure.status, failure.error_type) == (401, "identity_expired")


class TestAudienceAndIssuer:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(
            port=0,
            admin_token=ADMIN_TOKEN,
            jwt_secret=SECRET,
            jwt_audience="chat.shop.example",
            jwt_issuer="https://shop.example",
        )

    async def test_the_right_audience_and_issuer_are_let_in(self, connect: Connect) -> None:
        token = sign("anna", aud="chat.shop.example", iss="https://shop.example")
        client = await connect("signed-6", identity=token)
        assert (await client.greeting())["user_id"] == "anna"

    @pytest.mark.parametrize(
        ("claims", "said"),
        [
            ({"aud": "other", "iss": "https://shop.example"}, "audience (aud) is not"),
            ({"aud": "chat.shop.example", "iss": "https://evil.example"}, "issuer (iss) is not"),
            ({"iss": "https://shop.example"}, "no 'aud' claim"),
        ],
        ids=["wrong-aud", "wrong-iss", "no-aud"],
    )
    async def test_any_other_is_refused(self, port: int, claims: dict[str, Any], said: str) -> None:
        failure = await refused(port, "signed-7", identity=sign("anna", **claims))
        assert failure.status == 401
        assert said in failure.message


class TestWithoutSignedIdentities:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(port=0, admin_token=ADMIN_TOKEN)

    async def test_anonymous_sessions_and_user_labels_work_as_before(
        self, connect: Connect
    ) -> None:
        client = await connect("label-3", user_id="anna")
        assert (await client.greeting())["user_id"] == "anna"

    async def test_an_offered_token_proves_nothing(self, connect: Connect) -> None:
        client = await connect("unverified-1", identity=sign("anna"))
        greeting = await client.greeting()
        assert greeting["user_id"] is None
        reply = await client.chat("unverified-1", "Hol tart a 10041 rendelésem?")
        assert "feldolgozás alatt" not in reply["content"]


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"jwt_secret": "short"}, "needs at least 32"),
        ({"jwt_audience": "shop"}, "--jwt-audience needs --jwt-secret"),
        ({"jwt_required": True}, "--jwt-required needs"),
        ({"jwt_jwks_url": "http://idp.example/jwks.json"}, "use https"),
        ({"jwt_jwks_url": "ftp://idp.example/jwks.json"}, "not an https:// URL"),
    ],
    ids=["short-secret", "audience-alone", "required-alone", "plain-http", "not-http"],
)
def test_identity_settings_that_cannot_work_stop_the_start(
    options: dict[str, Any], said: str
) -> None:
    with pytest.raises(ConfigurationError, match=said):
        Server(Settings(port=0, **options))


def test_settings_never_show_the_secret() -> None:
    assert SECRET not in repr(Settings(jwt_secret=SECRET))


async def test_serve_reads_the_secret_from_a_file_never_the_command_line(tmp_path: Path) -> None:
    secret = tmp_path / "jwt.secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    server = launch_server("--agent", "echo", "--jwt-secret-file", str(secret), timeout=4 * TIMEOUT)
    try:
        client = await ChatClient.open(server.port, "served-1", identity=sign("anna"))
        assert (await client.greeting())["user_id"] == "anna"
        client.close()
        failure = await refused(server.port, "served-2", identity=sign("anna", key="x" * 40))
        assert failure.error_type == "identity_invalid"
    finally:
        server.stop()


def test_a_short_secret_is_a_one_line_error_with_exit_code_3(tmp_path: Path) -> None:
    secret = tmp_path / "jwt.secret"
    secret.write_text("short\n")
    secret.chmod(0o600)
    result = CliRunner().invoke(cli, ["serve", "--port", "0", "--jwt-secret-file", str(secret)])
    assert result.exit_code == 3
    assert "HS256 needs at least 32" in result.output
    assert "Traceback" not in result.output


async def test_chatbuddy_send_offers_a_signed_identity_read_from_a_file(
    port: int, tmp_path: Path
) -> None:
    token = sign("anna")
    identity = tmp_path / "anna.jwt"
    identity.write_text(token + "\n")
    identity.chmod(0o600)
    sent = await _chatbuddy("send", "--url", f"http://127.0.0.1:{port}", "--identity-file",
                            str(identity), "hello")  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert "the session's user: anna" in sent.stderr
    assert token not in sent.stdout + sent.stderr


async def test_chatbuddy_send_with_a_forged_identity_is_told_why_in_one_line(port: int) -> None:
    sent = await _chatbuddy(
        "send", "--url", f"http://127.0.0.1:{port}", "hello",
        CHATBUDDY_IDENTITY=sign("anna", key="not-the-shops-secret-0123456789abcdef"),
    )  # fmt: skip
    assert sent.returncode != 0
    assert "identity" in sent.stderr
    assert "Traceback" not in sent.stderr


async def _chatbuddy(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``chatbuddy ARGS`` in a process of its own (the server runs on this loop)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatbuddy", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )  # fmt: skip
    out, err = await asyncio.wait_for(child.communicate(), TIMEOUT)
    assert child.returncode is not None
    return subprocess.CompletedProcess(args, child.returncode, out.decode(), err.decode())
