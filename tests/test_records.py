"""What the stores keep: the fast constructor makes the same models as validation does."""

from __future__ import annotations

from chatbuddy.records import StoredMessage, stored_message, trusted, utcnow
from chatbuddy.wire.server_frames import ChatResponseData


def test_a_trusted_stored_message_equals_a_validated_one_and_serializes_the_same() -> None:
    now = utcnow()
    fields = {"id": 3, "role": "assistant", "content": "Szia!", "timestamp": now}
    extra = {"in_reply_to": 2, "agent": "general", "confidence": 0.5, "metadata": {"a": 1}}
    validated = StoredMessage(**fields, **extra)  # type: ignore[arg-type]
    fast = stored_message(**fields, **extra)  # type: ignore[arg-type]
    assert fast == validated
    assert fast.model_dump_json() == validated.model_dump_json()
    assert fast.model_dump(mode="json", exclude_none=True) == validated.model_dump(
        mode="json", exclude_none=True
    )


def test_a_trusted_model_of_any_kind_matches_its_validated_twin() -> None:
    values = {
        "message_id": 4,
        "content": "ok",
        "agent_type": "echo",
        "confidence": 1.0,
        "timestamp": utcnow(),
        "metadata": {},
        "in_reply_to": 3,
        "cancelled": None,
    }
    assert list(values) == list(ChatResponseData.model_fields)  # complete, in field order
    fast = trusted(ChatResponseData, dict(values))
    assert fast == ChatResponseData(**values)  # type: ignore[arg-type]
    assert fast.model_dump_json() == ChatResponseData(**values).model_dump_json()  # type: ignore[arg-type]
