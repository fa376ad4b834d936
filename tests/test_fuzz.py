"""Hostile frames, generated: the server answers each with a frame the protocol
defines (an error says what was wrong), never crashes, never closes the
connection, and keeps answering.

A regression test of the fuzzing that found nothing (issue #10): hypothesis
generates frames around the protocol's shapes (right and wrong types, missing
and extra fields, odd values, non-JSON text, binary) and shrinks any failure
to the smallest frame that causes it. Each example opens its own session on
one real server.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as search_settings
from hypothesis import strategies as st

from chatbuddy.errors import ErrorType
from chatbuddy.settings import Settings
from tests.builders import unlimited
from tests.conftest import ADMIN_TOKEN
from tests.helpers import ChatClient

#: The session every example's connection is in (its frames may name others).
SESSION = "fuzzed"
#: Error types a client's mistake may earn; an internal_error would be a bug.
CLIENT_ERRORS = {error.value for error in ErrorType} - {ErrorType.INTERNAL_ERROR.value}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities too: json.dumps writes them, JSON does not allow them
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
texts = st.text(max_size=300) | st.sampled_from(["", " ", "\x00", "\u202e", "a" * 4001])
ids = st.sampled_from([SESSION, "other", "", "bad id", "x" * 129]) | st.text(max_size=20)
frame_objects = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["chat_message", "ping", "session_info", "history"])
        | st.sampled_from(["", "CHAT_MESSAGE", "error", "pong", "connection_established"])
        | json_values,
    },
    optional={
        "session_id": ids | json_values,
        "content": texts | json_values,
        "user_id": ids | json_values,
        "client_message_id": ids | json_values,
        "timestamp": st.text(max_size=80) | json_values,
        "after": st.integers(min_value=-(2**65), max_value=2**65) | json_values,
        "limit": st.integers(min_value=-5, max_value=10**6) | json_values,
        "extra": json_values,
    },
)
frames = st.one_of(
    frame_objects.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
)


@pytest.fixture
def settings() -> Settings:
    """The echo agent answers at once; no budget closes a connection for its errors."""
    return unlimited(port=0, admin_token=ADMIN_TOKEN, agent="echo", max_violations=0)


async def exchange(port: int, sent: list[str | bytes]) -> list[dict[str, Any]]:
    """Send ``sent`` on a fresh connection, then a ping; every frame until its pong
    (each parsed against the protocol by the client)."""
    client = await ChatClient.open(port, f"{SESSION}-{secrets.token_hex(6)}")
    try:
        await client.greeting()
        for raw in sent:
            await client.send_raw(raw)
        mark = secrets.token_hex(8)
        await client.send(type="ping", timestamp=mark)
        received: list[dict[str, Any]] = []
        while True:
            frame = await client.receive()  # raises if the server closed the connection
            received.append(frame)
            if frame["type"] == "pong" and frame["data"].get("client_timestamp") == mark:
                return received
    finally:
        client.close()


async def test_any_frame_gets_a_protocol_answer_and_the_connection_keeps_working(
    port: int,
) -> None:
    # Hypothesis runs its search on a thread of its own; each example's exchange
    # runs on this test's event loop, where the server lives.
    loop = asyncio.get_running_loop()
    failures: list[BaseException] = []

    @search_settings(
        max_examples=150,
        deadline=None,
        derandomize=True,  # the same frames on every run: a regression test, not a lottery
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(frames, min_size=1, max_size=6))
    def one_connection(sent: list[str | bytes]) -> None:
        future = asyncio.run_coroutine_threadsafe(exchange(port, sent), loop)
        for frame in future.result(timeout=60):
            if frame["type"] == "error":
                assert frame["data"]["error_type"] in CLIENT_ERRORS, frame

    def search() -> None:
        try:
            one_connection()
        except BaseException as exc:  # reported on the test's own thread
            failures.append(exc)

    thread = threading.Thread(target=search, name="hypothesis")
    thread.start()
    await asyncio.to_thread(thread.join)
    if failures:
        raise failures[0]
