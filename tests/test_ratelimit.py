"""The token bucket, with time moved by hand."""

from __future__ import annotations

from chatbuddy.chat.ratelimit import TokenBucket


def test_a_full_bucket_allows_a_burst_then_refuses() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=1.0, burst=3, clock=lambda: now[0])
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_tokens_come_back_at_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=2, clock=lambda: now[0])
    assert bucket.try_acquire()
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    now[0] += 0.5
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    now[0] += 100
    assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]
