"""The connection registry on its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatbuddy.errors import ConnectionClosed
from chatbuddy.registry import ConnectionRegistry


@dataclass
class RecordingConnection:
    """A Connection that keeps what it was sent; ``alive=False`` makes sends fail."""

    connection_id: str
    session_id: str
    user_id: str | None = None
    alive: bool = True
    received: list[str] = field(default_factory=list)

    def send(self, frame: str) -> None:
        if not self.alive:
            raise ConnectionClosed(self.connection_id)
        self.received.append(frame)

    def close(self, code: int, reason: str) -> None:
        self.alive = False


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
    assert registry.session_count == 3
    assert registry.user_count == 2
    assert registry.session_counts() == {"s1": 2, "s2": 1, "s3": 1}
    assert registry.user_counts() == {"anna": 2, "bob": 1}


def test_it_finds_connections_by_id_session_and_user() -> None:
    registry, conns = populated()
    assert registry.get("c3") is conns[2]
    assert registry.get("nope") is None
    assert {c.connection_id for c in registry.in_session("s1")} == {"c1", "c2"}
    assert {c.connection_id for c in registry.of_user("anna")} == {"c1", "c2"}


def test_sending_to_a_session_can_leave_out_the_sender() -> None:
    registry, conns = populated()
    assert registry.send_to_session("s1", "hello", exclude="c1") == 1
    assert conns[0].received == []
    assert conns[1].received == ["hello"]


def test_sending_to_one_a_user_and_all() -> None:
    registry, conns = populated()
    assert registry.send_to("c3", "one")
    assert not registry.send_to("missing", "one")
    assert registry.send_to_user("anna", "user") == 2
    assert registry.broadcast("all") == 4
    assert conns[2].received == ["one", "all"]
    assert conns[0].received == ["user", "all"]


def test_a_send_that_fails_removes_the_connection() -> None:
    registry, conns = populated()
    conns[1].alive = False
    assert registry.send_to_session("s1", "hello") == 1
    assert registry.get("c2") is None
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
