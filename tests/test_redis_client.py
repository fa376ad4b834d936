"""The Redis engine's command client: auto-pipelining, outages, and how it connects."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chatbuddy.engine.redis.client import RedisClient
from chatbuddy.engine.redis.endpoint import RedisBusy, RedisReplyError, RedisUnavailable
from chatbuddy.engine.redis.subscriber import Subscriber
from tests.conftest import REDIS_PASSWORD as PASSWORD
from tests.helpers import TIMEOUT, eventually
from tests.redis_server import RedisServer, free_port

BOOM = "return redis.error_reply('BOOM the script said no')"
ADD = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # noqa: S324 - Redis's script id


# -- commands -------------------------------------------------------------------


async def test_two_thousand_concurrent_commands_all_succeed_with_their_own_replies(
    redis_url: str,
) -> None:
    client = RedisClient.from_url(redis_url)
    try:
        echoes = await asyncio.gather(*(client.execute("ECHO", f"m{i}") for i in range(2000)))
        assert echoes == [f"m{i}" for i in range(2000)]
        counts = await asyncio.gather(*(client.execute("INCRBY", f"k{i}", i) for i in range(2000)))
        assert counts == list(range(2000))
        assert client.pending == 0
    finally:
        await client.close()


async def test_commands_issued_in_one_loop_turn_leave_in_one_write(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    writes: list[bytes] = []
    connect = loop.create_connection

    async def counting_connection(*args: Any, **kwargs: Any) -> Any:
        transport, protocol = await connect(*args, **kwargs)
        write = transport.write

        def counted(data: Any) -> None:
            writes.append(bytes(data))
            write(data)

        transport.write = counted  # type: ignore[method-assign]
        return transport, protocol

    monkeypatch.setattr(loop, "create_connection", counting_connection)
    client = RedisClient(redis_url, connections=2)
    try:
        # Two turns connect both connections (their first write precedes the counting).
        await client.execute("PING")
        await client.execute("PING")
        writes.clear()

        replies = await asyncio.gather(*(client.execute("ECHO", str(i)) for i in range(100)))
        assert replies == [str(i) for i in range(100)]
        assert len(writes) == 1
        assert writes[0].count(b"ECHO") == 100

        writes.clear()
        await client.execute("PING")  # turn 1
        await client.execute_many([("PING",), ("ECHO", "x"), ("PING",)])  # turn 2
        assert len(writes) == 2
    finally:
        await client.close()


async def test_execute_many_returns_replies_in_order_and_raises_the_first_error(
    redis_url: str,
) -> None:
    client = RedisClient(redis_url)
    try:
        replies = await client.execute_many(
            [("SET", "a", "1"), ("INCR", "a"), ("HGET", "a", "f"), ("GET", "a")],
            raise_on_error=False,
        )
        assert replies[:2] == ["OK", 2]
        assert isinstance(replies[2], RedisReplyError)
        assert replies[2].code == "WRONGTYPE"
        assert replies[3] == "2"
        with pytest.raises(RedisReplyError) as raised:
            await client.execute_many([("INCR", "a"), ("HGET", "a", "f"), ("INCR", "a")])
        assert raised.value.code == "WRONGTYPE"
        assert await client.execute("GET", "a") == "4"  # every command of the batch ran
        assert await client.execute_many([]) == []
    finally:
        await client.close()


async def test_replies_decode_to_str_int_list_and_none(redis_url: str) -> None:
    client = RedisClient(redis_url)
    try:
        await client.execute("RPUSH", "list", "é", b"raw", 7, 1.5)
        assert await client.execute("LRANGE", "list", 0, -1) == ["é", "raw", "7", "1.5"]
        assert await client.execute("LLEN", "list") == 4
        assert await client.execute("GET", "missing") is None
        assert await client.execute("EVAL", "return {1, 'two', {3}}", 0) == [1, "two", [3]]
        with pytest.raises(TypeError):
            await client.execute("SET", "k", None)  # type: ignore[arg-type]
    finally:
        await client.close()


async def test_a_cancelled_caller_does_not_shift_the_replies_of_others(redis_url: str) -> None:
    client = RedisClient(redis_url)
    try:
        calls = [asyncio.ensure_future(client.execute("ECHO", str(i))) for i in range(50)]
        await asyncio.sleep(0)  # one turn: every call is queued (nothing is waited for here)
        for call in calls[::3]:
            call.cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
        for i, result in enumerate(results):
            if i % 3 == 0:
                assert isinstance(result, asyncio.CancelledError)
            else:
                assert result == str(i)
        assert await client.execute("ECHO", "after") == "after"
    finally:
        await client.close()


async def test_evalsha_loads_a_missing_script_once_and_retries(redis_url: str) -> None:
    client = RedisClient(redis_url)
    try:
        await client.execute("SCRIPT", "FLUSH")
        await client.execute("CONFIG", "RESETSTAT")
        assert await client.evalsha(sha1(ADD), ["n"], [5], script=ADD) == 5
        assert await client.evalsha(sha1(ADD), ["n"], [2], script=ADD) == 7
        stats = await client.execute("INFO", "commandstats")
        assert "cmdstat_script|load:calls=1," in stats
        assert "cmdstat_evalsha:calls=3," in stats  # NOSCRIPT, the retry, the second call
    finally:
        await client.close()


async def test_an_error_the_script_raises_surfaces_as_a_reply_error(redis_url: str) -> None:
    client = RedisClient(redis_url)
    try:
        with pytest.raises(RedisReplyError) as raised:
            await client.evalsha(sha1(BOOM), [], [], script=BOOM)
        assert raised.value.code == "BOOM"
        with pytest.raises(ValueError, match="SHA1"):
            await client.evalsha("0" * 40, [], [], script=BOOM)
    finally:
        await client.close()


async def test_reply_errors_never_quote_the_commands_arguments(redis_url: str) -> None:
    client = RedisClient(redis_url)
    try:
        with pytest.raises(RedisReplyError) as raised:
            await client.execute("NOSUCHCOMMAND", "private chat text")
        assert raised.value.code == "ERR"
        assert "private chat text" not in str(raised.value)
        assert "nosuchcommand" in str(raised.value).lower()
    finally:
        await client.close()


async def test_more_than_max_pending_commands_raise_redis_busy_and_the_client_still_works(
    redis_url: str,
) -> None:
    client = RedisClient(redis_url, max_pending=10)
    try:
        results = await asyncio.gather(
            *(client.execute("ECHO", str(i)) for i in range(25)), return_exceptions=True
        )
        assert results[:10] == [str(i) for i in range(10)]
        assert all(isinstance(result, RedisBusy) for result in results[10:])
        assert "max_pending=10" in str(results[10])
        with pytest.raises(RedisBusy):
            await client.execute_many([("PING",)] * 11)
        assert await client.execute("ECHO", "after") == "after"
        assert client.pending == 0
    finally:
        await client.close()


# -- outages ----------------------------------------------------------------------


async def test_stopped_redis_fails_commands_at_once_and_a_restart_on_the_same_port_works(
    own_redis: RedisServer,
) -> None:
    # A command_timeout far beyond the wait below: failures must not wait for it.
    client = RedisClient(own_redis.url, command_timeout=10 * TIMEOUT)
    try:
        assert await client.execute("SET", "kept", "yes") == "OK"
        own_redis.stop()
        for _ in range(3):  # the lost connections, then refused new ones
            with pytest.raises(RedisUnavailable) as raised:
                await asyncio.wait_for(client.execute("GET", "kept"), TIMEOUT)
            assert client.where in str(raised.value)
        own_redis.start()  # the same port; the append-only file kept the data
        assert await asyncio.wait_for(client.execute("GET", "kept"), TIMEOUT) == "yes"
    finally:
        await client.close()


async def test_a_lost_connection_fails_its_in_flight_commands_at_once(
    own_redis: RedisServer,
) -> None:
    client = RedisClient(own_redis.url, connections=1, command_timeout=10 * TIMEOUT)
    try:
        await client.execute("PING")
        blocked = asyncio.ensure_future(client.execute("BLPOP", "nothing-comes", 0))
        behind = asyncio.ensure_future(client.execute_many([("PING",), ("PING",)]))
        await eventually(lambda: blocked_clients(own_redis) == 1, "BLPOP blocking in Redis")
        own_redis.kill()
        for in_flight in (blocked, behind):
            with pytest.raises(RedisUnavailable, match="lost the connection"):
                await asyncio.wait_for(in_flight, TIMEOUT)
        assert client.pending == 0
    finally:
        await client.close()


def blocked_clients(server: RedisServer) -> int:
    with server.client() as probe:
        info: dict[str, Any] = probe.info("clients")
    return int(info["blocked_clients"])


async def test_a_command_without_a_reply_in_time_fails_and_its_connection_is_replaced(
    redis_url: str,
) -> None:
    client = RedisClient(redis_url, connections=1, command_timeout=TIMEOUT / 25)
    try:
        first_id = await client.execute("CLIENT", "ID")
        results: tuple[Any, ...] = await asyncio.gather(
            client.execute("BLPOP", "nothing-comes", 0),  # blocks the connection
            client.execute("PING"),  # pipelined behind it on the same connection
            return_exceptions=True,
        )
        stuck, behind = results
        assert isinstance(stuck, RedisUnavailable)
        assert "command_timeout" in str(stuck)
        assert isinstance(behind, RedisUnavailable)
        assert await client.execute("CLIENT", "ID") != first_id
    finally:
        await client.close()


async def test_commands_after_close_raise_redis_unavailable(redis_url: str) -> None:
    client = RedisClient(redis_url)
    await client.execute("PING")
    await client.close()
    with pytest.raises(RedisUnavailable, match="closed"):
        await client.execute("PING")
    await client.close()  # twice is fine


# -- connecting -------------------------------------------------------------------


async def test_a_password_and_a_database_from_the_url_are_used(
    locked_redis: RedisServer,
) -> None:
    client = RedisClient(f"redis://:{PASSWORD}@127.0.0.1:{locked_redis.port}/3")
    try:
        assert client.where == f"127.0.0.1:{locked_redis.port}/3"
        await client.execute("SET", "where", "db3")
        assert "db=3" in await client.execute("CLIENT", "INFO")
        with locked_redis.client() as probe:  # db 0
            assert probe.get("where") is None
            probe.execute_command("SELECT", 3)
            assert probe.get("where") == "db3"
    finally:
        await client.close()


async def test_a_user_name_and_password_log_in_as_that_user(locked_redis: RedisServer) -> None:
    with locked_redis.client() as admin:
        admin.execute_command("ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "&*", "+@all")
    client = RedisClient(f"redis://alice:alice-pw@127.0.0.1:{locked_redis.port}")
    try:
        assert await client.execute("ACL", "WHOAMI") == "alice"
    finally:
        await client.close()


async def test_a_wrong_password_is_a_clear_error_that_does_not_contain_it(
    locked_redis: RedisServer,
) -> None:
    wrong = "not-the-Password-42"
    url = f"redis://:{wrong}@127.0.0.1:{locked_redis.port}"
    client = RedisClient(url)
    subscriber = Subscriber(url)
    try:
        with pytest.raises(RedisUnavailable) as raised:
            await client.execute("PING")
        with pytest.raises(RedisUnavailable) as raised_too:
            await subscriber.connect()
        for error in (raised.value, raised_too.value):
            text = f"{error} {error!r} {error.__cause__!r}"
            assert "WRONGPASS" in text
            assert "refused" in text
            assert wrong not in text
            assert isinstance(error.__cause__, RedisReplyError)
            assert error.__cause__.code == "WRONGPASS"
    finally:
        await client.close()
        await subscriber.close()


async def test_no_password_where_one_is_needed_is_a_clear_error(
    locked_redis: RedisServer,
) -> None:
    client = RedisClient(f"redis://127.0.0.1:{locked_redis.port}")
    try:
        with pytest.raises(RedisReplyError) as raised:
            await client.execute("PING")
        assert raised.value.code == "NOAUTH"
    finally:
        await client.close()


async def test_a_unix_socket_url_connects_with_its_database(
    locked_redis: RedisServer, tmp_path: Path
) -> None:
    client = RedisClient(f"unix://:{PASSWORD}@{tmp_path}/redis.sock?db=2")
    try:
        assert client.where == f"unix:{tmp_path}/redis.sock/2"
        assert "db=2" in await client.execute("CLIENT", "INFO")
    finally:
        await client.close()


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    """A self-signed certificate for localhost (cert.pem, key.pem) in tmp_path."""
    if shutil.which("openssl") is None:
        pytest.fail("needs openssl to make a certificate: apt-get install openssl")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
         "-subj", "/CN=localhost"],
        check=True, capture_output=True, timeout=TIMEOUT * 6,
    )  # fmt: skip
    return tmp_path


async def test_a_rediss_url_talks_tls(certificate: Path) -> None:
    tls_port = free_port()
    server = RedisServer(
        certificate,
        extra_args=[
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(certificate / "cert.pem"),
            "--tls-key-file", str(certificate / "key.pem"),
            "--tls-ca-cert-file", str(certificate / "cert.pem"),
            "--tls-auth-clients", "no",
        ],
    )  # fmt: skip
    server.start()
    verified = RedisClient(f"rediss://localhost:{tls_port}")
    unverified = RedisClient(f"rediss://localhost:{tls_port}?ssl_cert_reqs=none")
    try:
        with pytest.raises(RedisUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await verified.execute("PING")  # self-signed: not trusted by default
        assert await unverified.execute("PING") == "PONG"
    finally:
        await verified.close()
        await unverified.close()
        server.stop()


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://:hunter2@example.com", "redis://"),
        ("redis://:hunter2@example.com/zero", "database is a number"),
        ("redis://:hunter2@example.com?socket_timeout=1", "socket_timeout"),
        ("redis://alice@example.com", "needs a password"),
        ("redis://:hunter2@example.com?ssl_cert_reqs=none", "rediss://"),
        ("rediss://:hunter2@example.com?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
        ("unix://:hunter2@", "socket path"),
    ],
)
def test_urls_that_cannot_work_are_refused_without_their_password(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as raised:
        RedisClient(url)
    assert "hunter2" not in str(raised.value)


def test_where_names_host_port_and_database_but_never_the_password() -> None:
    assert RedisClient("redis://:hunter2@cache.example:6380/4").where == "cache.example:6380/4"
    assert RedisClient("rediss://u:hunter2@cache.example").where == "cache.example:6379/0"
    assert Subscriber("redis://:hunter2@10.0.0.5").where == "10.0.0.5:6379/0"
    assert "hunter2" not in repr(RedisClient("redis://:hunter2@h")._target)
