"""What a client is told when something fails: one mapping, no internals."""

from __future__ import annotations

import logging

import pytest

from chatbuddy.chat.failures import client_error
from chatbuddy.errors import ClientError, ErrorType, SessionNotFound, StorageUnavailable


def test_a_client_error_is_told_as_it_is() -> None:
    error = ClientError(ErrorType.RATE_LIMITED, "slow down", request_type="chat_message")
    assert client_error(error, session_id="s1", request_type="ping") is error


def test_an_expired_session_is_missing_session() -> None:
    told = client_error(SessionNotFound("s1"), session_id="s1", request_type="history")
    assert (told.error_type, told.request_type) == (ErrorType.MISSING_SESSION, "history")
    assert "'s1' has expired" in told.message


def test_a_storage_outage_during_a_chat_message_says_to_resend_it() -> None:
    told = client_error(
        StorageUnavailable("Redis at 10.0.0.5:6379/0 is down"),
        session_id="s1",
        request_type="chat_message",
    )
    assert told.error_type is ErrorType.STORAGE_UNAVAILABLE
    assert "resend it with the same client_message_id" in told.message
    assert "10.0.0.5" not in told.message  # no backend address reaches a client


def test_a_bug_is_an_internal_error_logged_with_its_traceback_but_not_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        told = client_error(KeyError("secret detail"), session_id="s1", request_type="history")
    assert told.error_type is ErrorType.INTERNAL_ERROR
    assert "secret detail" not in told.message
    assert caplog.records[0].exc_info is not None
