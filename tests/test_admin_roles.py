"""Admin roles: each endpoint lets in the roles it declares, refuses the others with
403 and a reason, and records who did what; tokens come and go with the file."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import tornado.web
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from chatbuddy.admin_tokens import SERVER_TOKEN_NAME, Role, TokenBook, add_token, revoke_token
from chatbuddy.client.admin import AdminClient
from chatbuddy.client.target import Target
from chatbuddy.errors import AccessRefused, ConfigurationError, Conflict
from chatbuddy.server import Server
from chatbuddy.settings import Settings
from chatbuddy.web.admin import AdminHandler, AdminTailHandler
from chatbuddy.web.auth import ACTION_ROLES, AdminAction
from tests.conftest import ADMIN_TOKEN, Connect, Http
from tests.helpers import TIMEOUT

#: Every admin endpoint of this server and the lowest role that may use it.
ENDPOINTS = {
    "/api/v1/websocket/stats": Role.STATS,
    "/api/v1/sessions": Role.VIEWER,
    "/api/v1/sessions/nobody-here": Role.VIEWER,
    "/api/v1/export": Role.ADMIN,
    "/metrics": Role.STATS,  # Prometheus exposition, not JSON
}
#: Every erasing endpoint (DELETE): administrators only.
ERASERS = ("/api/v1/sessions/nobody-here", "/api/v1/users/nobody/sessions")


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    return tmp_path / "admin-tokens"


@pytest.fixture
def issued(tokens_file: Path) -> dict[Role, str]:
    """One token of each role in the tokens file, named after its role."""
    return {role: add_token(tokens_file, f"{role.label}-bot", role) for role in Role}


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    return tmp_path / "audit.log"


@pytest.fixture
def settings(tokens_file: Path, issued: dict[Role, str], audit_file: Path) -> Settings:
    return Settings(
        port=0,
        admin_token=ADMIN_TOKEN,
        admin_tokens_file=str(tokens_file),
        audit_log=str(audit_file),
    )


async def get(http: Http, path: str, token: str) -> tuple[int, dict[str, Any]]:
    response = await http.fetch(path, headers={"Authorization": f"Bearer {token}"})
    if response.headers.get("Content-Type", "").startswith("application/json"):
        return response.code, json.loads(response.body)
    return response.code, {}


def audit_records(server: Server, path: Path, event: str) -> list[dict[str, Any]]:
    server.audit.flush()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [record for record in records if record["event"] == event]


def break_file(path: Path) -> None:
    """Append a line that is not NAME ROLE HASH CREATED."""
    with path.open("a") as handle:
        handle.write("half a line\n")


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.label)
async def test_each_endpoint_admits_its_role_and_the_roles_above_it(
    http: Http, issued: dict[Role, str], path: str, role: Role
) -> None:
    code, body = await get(http, path, issued[role])
    if role >= ENDPOINTS[path]:
        assert code in (200, 404)  # 404: the admitted request found no such session
    else:
        assert code == 403
        assert body["error"]["type"] == "forbidden"


@pytest.mark.parametrize("path", ERASERS)
async def test_only_an_admin_erases(http: Http, issued: dict[Role, str], path: str) -> None:
    for role in Role:
        response = await http.fetch(
            path, method="DELETE", headers={"Authorization": f"Bearer {issued[role]}"}
        )
        # 404: the admitted request found nothing to erase.
        assert response.code == (404 if role is Role.ADMIN else 403), role


async def test_a_refusal_names_the_role_needed_and_the_tokens_own(
    http: Http, issued: dict[Role, str]
) -> None:
    code, body = await get(http, "/api/v1/sessions", issued[Role.STATS])
    assert code == 403
    assert body["error"]["message"] == (
        "GET /api/v1/sessions needs the role 'viewer' or higher; the token 'stats-bot' has "
        "'stats' (roles: stats < viewer < operator < admin)"
    )


async def test_the_servers_own_token_is_an_admin(http: Http) -> None:
    for path in ENDPOINTS:
        code, _ = await get(http, path, ADMIN_TOKEN)
        assert code in (200, 404)


async def test_an_unknown_token_is_still_401_not_403(http: Http) -> None:
    code, body = await get(http, "/api/v1/websocket/stats", "not-a-token-of-anyone")
    assert code == 401
    assert body["error"]["type"] == "unauthorized"


async def test_every_admin_request_is_audited_with_the_tokens_name_and_role(
    server: Server, http: Http, issued: dict[Role, str], audit_file: Path
) -> None:
    await get(http, "/api/v1/websocket/stats", issued[Role.STATS])
    await get(http, "/api/v1/sessions", issued[Role.STATS])
    await get(http, "/api/v1/sessions", ADMIN_TOKEN)

    admitted = audit_records(server, audit_file, "admin_request")
    refused = audit_records(server, audit_file, "admin_refused")
    assert [(r["admin"], r["holder"], r["role"]) for r in admitted] == [
        ("/api/v1/websocket/stats", "stats-bot", "stats"),
        ("/api/v1/sessions", SERVER_TOKEN_NAME, "admin"),
    ]
    assert [(r["admin"], r["holder"], r["role"], r["reason"]) for r in refused] == [
        ("/api/v1/sessions", "stats-bot", "stats", "role_too_low")
    ]
    text = json.dumps(audit_records(server, audit_file, "admin_request") + refused)
    for token in issued.values():
        assert token not in text


async def test_the_tail_needs_a_viewer(port: int, issued: dict[Role, str]) -> None:
    url = f"ws://127.0.0.1:{port}/ws/admin/tail"
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(
            HTTPRequest(url, headers={"Authorization": f"Bearer {issued[Role.STATS]}"})
        )
    assert refused.value.code == 403
    tail = await websocket_connect(
        HTTPRequest(url, headers={"Authorization": f"Bearer {issued[Role.VIEWER]}"})
    )
    tail.close()


async def test_a_revoked_token_is_refused_at_its_next_request_without_a_restart(
    http: Http, tokens_file: Path, issued: dict[Role, str]
) -> None:
    assert (await get(http, "/api/v1/sessions", issued[Role.VIEWER]))[0] == 200
    assert revoke_token(tokens_file, "viewer-bot")
    code, _ = await get(http, "/api/v1/sessions", issued[Role.VIEWER])
    assert code == 401
    assert (await get(http, "/api/v1/sessions", issued[Role.OPERATOR]))[0] == 200


async def test_a_token_added_while_the_server_runs_works_at_once(
    http: Http, tokens_file: Path
) -> None:
    token = add_token(tokens_file, "late-comer", Role.VIEWER)
    assert (await get(http, "/api/v1/sessions", token))[0] == 200


async def test_an_open_tail_closes_once_its_token_is_revoked(
    port: int, tokens_file: Path, issued: dict[Role, str], connect: Connect
) -> None:
    tail = await websocket_connect(
        HTTPRequest(
            f"ws://127.0.0.1:{port}/ws/admin/tail",
            headers={"Authorization": f"Bearer {issued[Role.VIEWER]}"},
        )
    )
    revoke_token(tokens_file, "viewer-bot")
    while await asyncio.wait_for(tail.read_message(), TIMEOUT) is not None:
        pass  # events, if any, until it closes
    assert tail.close_code == 1008


async def test_a_tokens_file_broken_while_running_lets_none_of_its_tokens_in(
    http: Http, tokens_file: Path, issued: dict[Role, str]
) -> None:
    break_file(tokens_file)
    assert (await get(http, "/api/v1/sessions", issued[Role.ADMIN]))[0] == 401
    assert (await get(http, "/api/v1/sessions", ADMIN_TOKEN))[0] == 200


def test_a_broken_tokens_file_stops_the_server_from_starting(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("grafana superuser sha256:" + "0" * 64 + " 2026-11-27T10:00:00Z\n")
    with pytest.raises(ConfigurationError, match="line 1: unknown role 'superuser'"):
        Server(Settings(port=0, admin_tokens_file=str(path)))


def test_a_single_token_given_as_a_tokens_file_is_told_apart(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    path.write_text("Ovk1w2x3y4z5-just-one-token\n")
    with pytest.raises(ConfigurationError, match="--admin-token-file, not --admin-tokens-file"):
        TokenBook(path)


def test_a_missing_tokens_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="chatbuddy tokens add NAME"):
        TokenBook(tmp_path / "nowhere")


def test_the_tokens_file_holds_hashes_only_and_only_its_owner_reads_it(
    tokens_file: Path, issued: dict[Role, str]
) -> None:
    text = tokens_file.read_text()
    for token in issued.values():
        assert token not in text
    assert text.count("sha256:") == len(Role)
    assert tokens_file.stat().st_mode & 0o777 == 0o600


def test_every_admin_endpoint_declares_its_roles(server: Server) -> None:
    handlers = _admin_handlers(server.app)
    assert len(handlers) >= 4
    for handler in handlers:
        if issubclass(handler, AdminHandler):
            assert handler.actions, f"{handler.__name__} declares no actions"
            assert set(handler.actions.values()) <= set(ACTION_ROLES), handler.__name__
    # Every action has its role, and each role's actions are what the issue gives it.
    assert set(ACTION_ROLES) == set(AdminAction)
    assert {a for a, role in ACTION_ROLES.items() if role is Role.STATS} == {AdminAction.READ_STATS}
    assert {a for a, role in ACTION_ROLES.items() if role is Role.ADMIN} == {
        AdminAction.ERASE,
        AdminAction.EXPORT,
    }


def _admin_handlers(app: tornado.web.Application) -> list[Any]:
    found = []
    for rule in app.wildcard_router.rules:
        target = rule.target
        if isinstance(target, type) and issubclass(target, AdminHandler | AdminTailHandler):
            found.append(target)
    return found


async def test_a_viewer_reads_a_transcript(
    http: Http, connect: Connect, issued: dict[Role, str]
) -> None:
    client = await connect("roles-1")
    await client.greeting()
    await client.chat("roles-1", "hello")
    code, body = await get(http, "/api/v1/sessions/roles-1", issued[Role.VIEWER])
    assert code == 200
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]


async def test_an_operator_token_acts_under_its_own_name_and_no_other(
    port: int, connect: Connect, tokens_file: Path
) -> None:
    client = await connect("held-1")
    await client.greeting()
    anna = AdminClient(
        Target(f"http://127.0.0.1:{port}", add_token(tokens_file, "Anna", Role.OPERATOR))
    )
    bob = AdminClient(
        Target(f"http://127.0.0.1:{port}", add_token(tokens_file, "Bob", Role.OPERATOR))
    )
    taken = await anna.take("held-1", "Anna")
    assert taken["hold"]["operator"] == "Anna"
    # Bob's token cannot pass for Anna's, to write in her conversation or end her hold.
    with pytest.raises(AccessRefused) as refused:
        await bob.say("held-1", "Anna", "it is me, Anna")
    assert "the token 'Bob' acts as 'Bob', not as 'Anna'" in refused.value.message
    with pytest.raises(AccessRefused):
        await bob.release("held-1", "Anna")
    with pytest.raises(Conflict):  # as himself, he is told who holds it
        await bob.say("held-1", "Bob", "let me")
    # The server's own token (the machine's administrator) still names whom it acts for.
    owner = AdminClient(Target(f"http://127.0.0.1:{port}", ADMIN_TOKEN))
    await owner.say("held-1", "Anna", "written for Anna by the shop's owner")
    # Nor can he end her hold by force: that is an administrator's decision.
    with pytest.raises(AccessRefused) as forced:
        await bob.release("held-1", None, force=True)
    assert "needs the role 'admin'" in forced.value.message
    # A refusal keeps a name the HTTP status line cannot carry.
    with pytest.raises(AccessRefused) as renamed:
        await bob.say("held-1", "Szőke Anna", "hi")
    assert "not as 'Szőke Anna'" in renamed.value.message
    boss = AdminClient(
        Target(f"http://127.0.0.1:{port}", add_token(tokens_file, "Boss", Role.ADMIN))
    )
    assert (await boss.release("held-1", None, force=True))["released"]["operator"] == "Anna"


def test_no_token_of_the_file_can_take_the_servers_own_tokens_name(tokens_file: Path) -> None:
    with pytest.raises(ConfigurationError, match="the server's own token's"):
        add_token(tokens_file, SERVER_TOKEN_NAME, Role.OPERATOR)


async def test_chatbuddy_say_with_an_operator_token_speaks_under_the_tokens_name(
    port: int, connect: Connect, tokens_file: Path
) -> None:
    customer = await connect("cli-op")
    await customer.greeting()
    token = add_token(tokens_file, "Anna", Role.OPERATOR)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatbuddy", "say", "cli-op", "Anna here.",
        "--url", f"http://127.0.0.1:{port}",
        env={**os.environ, "CHATBUDDY_ADMIN_TOKEN": token},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(child.communicate(), TIMEOUT)
    assert child.returncode == 0, err.decode()
    said = await customer.receive()
    while said["type"] != "operator_message":
        said = await customer.receive()
    assert (said["data"]["name"], said["data"]["content"]) == ("Anna", "Anna here.")
