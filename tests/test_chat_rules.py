"""The frame rules on their own: a frame and a peer in, a decision out; no socket, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from chatbuddy.chat.ratelimit import TokenBucket
from chatbuddy.chat.rules import (
    Disconnect,
    Enqueue,
    Outcome,
    Peer,
    PendingMessage,
    Refuse,
    Send,
    ShowHistory,
    ShowSessionInfo,
    StopReply,
    decide,
)
from chatbuddy.errors import ErrorType


def peer(
    limiter: TokenBucket | None = None,
    *,
    frames: TokenBucket | None = None,
    strikes: TokenBucket | None = None,
) -> Peer:
    limits = (("connection", limiter),) if limiter is not None else ()
    return Peer("conn-1", "s1", "anna", limits=limits, frames=frames, strikes=strikes)


def rule(
    frame: Mapping[str, object] | str | bytes, who: Peer | None = None, waiting: int = 0
) -> Outcome:
    text = frame if isinstance(frame, str | bytes) else json.dumps(frame)
    return decide(text, who or peer(), waiting=waiting, max_waiting=3)


def refusal(outcome: Outcome) -> ErrorType:
    assert isinstance(outcome, Refuse), outcome
    return outcome.error.error_type


def limit_of(outcome: Outcome) -> str | None:
    """The rate limit that refused the frame (the label its metric is counted under)."""
    assert isinstance(outcome, Refuse), outcome
    return outcome.limit


def test_a_chat_message_in_the_connections_session_is_queued_with_its_ids() -> None:
    outcome = rule(
        {"type": "chat_message", "session_id": "s1", "content": "hi", "client_message_id": "c-1"}
    )
    assert outcome == Enqueue(PendingMessage("s1", "conn-1", "anna", "hi", "c-1"))


def test_a_chat_message_for_another_session_is_refused() -> None:
    outcome = rule({"type": "chat_message", "session_id": "s2", "content": "hi"})
    assert refusal(outcome) is ErrorType.SESSION_MISMATCH
    assert "'s2'" in outcome.error.message  # type: ignore[union-attr]


def test_a_chat_message_claiming_another_user_is_refused() -> None:
    outcome = rule({"type": "chat_message", "session_id": "s1", "user_id": "bob", "content": "x"})
    assert refusal(outcome) is ErrorType.VALIDATION_ERROR


def test_a_connection_over_its_rate_is_refused_until_tokens_come_back() -> None:
    now = [0.0]
    limited = peer(TokenBucket(1.0, 2, clock=lambda: now[0]))
    frame: Mapping[str, object] = {"type": "chat_message", "session_id": "s1", "content": "hi"}
    assert isinstance(rule(frame, limited), Enqueue)
    assert isinstance(rule(frame, limited), Enqueue)
    outcome = rule(frame, limited)
    assert refusal(outcome) is ErrorType.RATE_LIMITED
    assert limit_of(outcome) == "connection"
    now[0] += 1.0
    assert isinstance(rule(frame, limited), Enqueue)


def test_a_session_with_too_many_waiting_messages_refuses_more() -> None:
    frame: Mapping[str, object] = {"type": "chat_message", "session_id": "s1", "content": "hi"}
    assert isinstance(rule(frame, waiting=2), Enqueue)
    outcome = rule(frame, waiting=3)
    assert refusal(outcome) is ErrorType.RATE_LIMITED
    assert "3 messages are already waiting" in outcome.error.message  # type: ignore[union-attr]
    assert limit_of(outcome) == "queue"


def test_a_ping_is_answered_at_once_with_the_clients_timestamp() -> None:
    outcome = rule({"type": "ping", "timestamp": "t-42"})
    assert isinstance(outcome, Send)
    pong = json.loads(outcome.frame)
    assert (pong["type"], pong["data"]["client_timestamp"]) == ("pong", "t-42")


def test_reads_become_look_ups_for_the_service() -> None:
    assert rule({"type": "session_info"}) == ShowSessionInfo()
    assert rule({"type": "history", "after": 4, "limit": 10}) == ShowHistory(after=4, limit=10)
    assert rule({"type": "history"}) == ShowHistory(after=None, limit=200)


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ("{not json", ErrorType.INVALID_JSON),
        (b"\x00\x01", ErrorType.UNSUPPORTED_FRAME),
        ('{"content": "no type"}', ErrorType.MISSING_TYPE),
        ('{"type": "dance"}', ErrorType.UNKNOWN_TYPE),
        ('{"type": "chat_message", "session_id": "s1", "content": "  "}', ErrorType.EMPTY_MESSAGE),
    ],
)
def test_bad_frames_are_refused_with_the_protocols_error_type(
    frame: str | bytes, kind: ErrorType
) -> None:
    outcome = rule(frame)
    assert refusal(outcome) is kind
    assert limit_of(outcome) is None


def test_a_session_budget_is_shared_by_every_tab_of_it() -> None:
    now = [0.0]
    shared = TokenBucket(1.0, 2, clock=lambda: now[0])
    tab1 = Peer("c1", "s1", None, limits=(("session", shared),))
    tab2 = Peer("c2", "s1", None, limits=(("session", shared),))
    frame = {"type": "chat_message", "session_id": "s1", "content": "hi"}
    assert isinstance(rule(frame, tab1), Enqueue)
    assert isinstance(rule(frame, tab2), Enqueue)
    outcome = rule(frame, tab1)
    assert refusal(outcome) is ErrorType.RATE_LIMITED
    assert "from this session" in outcome.error.message  # type: ignore[union-attr]
    assert limit_of(outcome) == "session"


def test_every_kind_of_frame_counts_against_the_frame_budget() -> None:
    now = [0.0]
    limited = peer(frames=TokenBucket(1.0, 2, clock=lambda: now[0]))
    assert isinstance(rule({"type": "ping"}, limited), Send)
    assert rule({"type": "session_info"}, limited) == ShowSessionInfo()
    outcome = rule({"type": "ping"}, limited)
    assert refusal(outcome) is ErrorType.RATE_LIMITED
    assert limit_of(outcome) == "frames"


def test_a_peer_that_keeps_breaking_the_rules_is_disconnected_with_1008() -> None:
    now = [0.0]
    rude = peer(strikes=TokenBucket(1.0, 3, clock=lambda: now[0]))
    outcomes = [rule("{not json", rude) for _ in range(4)]
    assert [type(o).__name__ for o in outcomes] == ["Refuse", "Refuse", "Refuse", "Disconnect"]
    assert outcomes[-1] == Disconnect(1008, "too many refused frames")
    now[0] += 1.0  # strikes refill: a well-behaved while later is forgiven
    assert isinstance(rule("{not json", rude), Refuse)


def test_while_the_server_drains_a_chat_message_gets_a_retryable_refusal() -> None:
    text = json.dumps({"type": "chat_message", "session_id": "s1", "content": "hi"})
    outcome = decide(text, peer(), waiting=0, max_waiting=3, draining=True)
    assert refusal(outcome) is ErrorType.SHUTTING_DOWN


def test_a_cancel_by_reply_id_stops_that_reply_of_the_connections_session() -> None:
    who = Peer("conn-1", "s1", "anna", incarnation="life-1")
    assert rule({"type": "cancel", "message_id": 4}, who) == StopReply("s1", "life-1", 4, None)


def test_a_cancel_by_client_message_id_stops_the_reply_to_that_message() -> None:
    outcome = rule({"type": "cancel", "client_message_id": "web-1"})
    assert outcome == StopReply("s1", "", None, "web-1")


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "cancel"},
        {"type": "cancel", "message_id": 4, "client_message_id": "web-1"},
        {"type": "cancel", "message_id": 0},
        {"type": "cancel", "message_id": "4"},
        {"type": "cancel", "client_message_id": "no spaces allowed"},
    ],
)
def test_a_cancel_must_name_exactly_one_valid_target(frame: dict[str, object]) -> None:
    outcome = rule(frame)
    assert isinstance(outcome, Refuse)
    assert outcome.error.error_type == ErrorType.VALIDATION_ERROR
    assert outcome.error.request_type == "cancel"


def test_cancels_count_against_the_frame_budget() -> None:
    who = peer(frames=TokenBucket(rate=0.001, burst=1))
    assert isinstance(rule({"type": "cancel", "message_id": 4}, who), StopReply)
    refused = rule({"type": "cancel", "message_id": 4}, who)
    assert isinstance(refused, Refuse)
    assert refused.error.error_type == ErrorType.RATE_LIMITED
