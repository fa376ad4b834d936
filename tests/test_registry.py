"""The connection registry on its own."""

from __future__ import annotations

from chatbuddy.chat.registry import ConnectionRegistry
from tests.doubles import RecordingConnection


def populated() -> tuple[ConnectionRegistry, list[RecordingConnection]]:
    registry = ConnectionRegistry()
    conns = [
        RecordingConnection("c1", "s1", "anna"),
        RecordingConnection("c2", "s1", "anna"),
        RecordingConnection("c3", "s2", "bob"),
        RecordingConnection("c4", "s3"),
    ]
    for conn in conns:
        registry.add(conn)
    return registry, conns


def test_it_counts_connections_sessions_and_users() -> None:
    registry, _ = populated()
    assert len(registry) == 4
    assert registry.session_counts() == {"s1": 2, "s2": 1, "s3": 1}
    assert registry.user_counts() == {"anna": 2, "bob": 1}


def test_it_finds_the_connections_of_a_session() -> None:
    registry, _ = populated()
    assert {c.connection_id for c in registry.in_session("s1")} == {"c1", "c2"}
    assert registry.in_session("nobody") == []


def test_sending_to_a_session_can_leave_out_the_sender() -> None:
    registry, conns = populated()
    assert registry.send_to_session("s1", "hello", exclude="c1") == 1
    assert conns[0].received == []
    assert conns[1].received == ["hello"]


def test_sending_to_one_connection_reaches_only_it() -> None:
    registry, conns = populated()
    assert registry.send_to("c3", "one")
    assert not registry.send_to("missing", "one")
    assert conns[2].received == ["one"]
    assert all(not c.received for c in conns if c is not conns[2])


def test_a_send_that_fails_removes_the_connection() -> None:
    registry, conns = populated()
    conns[1].alive = False
    assert registry.send_to_session("s1", "hello") == 1
    assert [c.connection_id for c in registry.in_session("s1")] == ["c1"]
    assert registry.session_counts()["s1"] == 1
    assert registry.user_counts()["anna"] == 1


def test_removing_the_last_connection_forgets_its_session_and_user() -> None:
    registry, conns = populated()
    assert registry.remove(conns[2])
    assert not registry.remove(conns[2])
    assert "s2" not in registry.session_counts()
    assert "bob" not in registry.user_counts()
    assert registry.send_to_session("s2", "anyone?") == 0


def test_a_lazy_frame_is_made_only_when_someone_receives_it() -> None:
    registry, conns = populated()
    made: list[str] = []

    def make() -> str:
        made.append("frame")
        return "frame"

    assert registry.send_to_session("s2", make, exclude="c3") == 0  # only the sender
    assert made == []
    assert registry.send_to_session("s1", make, exclude="c1") == 1
    assert made == ["frame"]
    assert conns[1].received == ["frame"]


def test_a_sole_tab_is_the_only_connection_of_its_session_here() -> None:
    registry, _ = populated()
    assert registry.sole_tab("s2", "c3")
    assert not registry.sole_tab("s1", "c1")  # c2 is in the session too
    # A message over HTTP comes from no connection here: others may listen elsewhere.
    assert not registry.sole_tab("s2", "http-request")
    assert not registry.sole_tab("nobody", "c1")
