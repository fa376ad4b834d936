"""The frames the chat layer makes: a history page stays within its byte budget."""

from __future__ import annotations

from chatbuddy.chat.frames import page_within
from chatbuddy.records import StoredMessage, stored_message, utcnow


def messages(count: int, size: int) -> list[StoredMessage]:
    now = utcnow()
    return [
        stored_message(id=n, role="user", content="x" * size, timestamp=now)
        for n in range(1, count + 1)
    ]


def test_a_page_that_fits_is_left_as_it_is() -> None:
    page = messages(3, 10)
    assert page_within(page, False, None, 10_000) == (page, False)


def test_paging_forward_keeps_the_oldest_and_says_more_follow() -> None:
    kept, more = page_within(messages(10, 1000), False, 0, 3 * 1200)
    assert [m.id for m in kept] == [1, 2, 3]
    assert more


def test_the_latest_page_keeps_the_newest() -> None:
    kept, more = page_within(messages(10, 1000), False, None, 3 * 1200)
    assert [m.id for m in kept] == [8, 9, 10]
    assert not more


def test_a_page_always_carries_at_least_one_message() -> None:
    kept, _ = page_within(messages(2, 5000), False, 0, 100)
    assert [m.id for m in kept] == [1]
