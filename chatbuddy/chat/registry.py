"""The connection registry: who is connected to this process.

Shared by the WebSocket handler and the HTTP handlers (passed to both through
``initialize()``), never held in a global. It knows nothing about Tornado:
a connection is anything with ids and a ``send``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Protocol

from chatbuddy.errors import ConnectionClosed

log = logging.getLogger(__name__)


class Connection(Protocol):
    """One live client connection, as the registry and the chat logic see it."""

    @property
    def connection_id(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def remote_ip(self) -> str | None:
        """The client's address (its forwarded one behind a trusted proxy)."""

    @property
    def incarnation(self) -> str:
        """The life of the session this connection was admitted to."""

    def send(self, frame: str) -> None:
        """Queue ``frame`` for the client; raise ConnectionClosed if it is gone."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection with a WebSocket close code."""


class ConnectionRegistry:
    """Live connections by id, by session and by user.

    A send that fails removes the connection, so the registry never keeps
    sending to the dead.
    """

    def __init__(self) -> None:
        # connection_id -> connection: the single owner of every entry.
        self._by_id: dict[str, Connection] = {}
        # session_id -> {connection_id: connection}; empty entries are deleted,
        # so len() of this dict is the number of sessions with live connections.
        self._by_session: dict[str, dict[str, Connection]] = {}
        # user_id -> {connection_id: connection}; anonymous connections are not here.
        self._by_user: dict[str, dict[str, Connection]] = {}

    def add(self, connection: Connection) -> None:
        """Register ``connection`` (idempotent)."""
        cid = connection.connection_id
        self._by_id[cid] = connection
        self._by_session.setdefault(connection.session_id, {})[cid] = connection
        if connection.user_id is not None:
            self._by_user.setdefault(connection.user_id, {})[cid] = connection

    def remove(self, connection: Connection) -> bool:
        """Forget ``connection``; False if it was not registered."""
        cid = connection.connection_id
        if self._by_id.pop(cid, None) is None:
            return False
        _discard(self._by_session, connection.session_id, cid)
        if connection.user_id is not None:
            _discard(self._by_user, connection.user_id, cid)
        return True

    def in_session(self, session_id: str) -> list[Connection]:
        return list(self._by_session.get(session_id, {}).values())

    def sole_tab(self, session_id: str, connection_id: str) -> bool:
        """Whether ``connection_id`` is here and the session's only connection here."""
        here = self._by_session.get(session_id)
        return here is not None and len(here) == 1 and connection_id in here

    def get(self, connection_id: str) -> Connection | None:
        return self._by_id.get(connection_id)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    # -- sending ----------------------------------------------------------

    def send_to(self, connection_id: str, frame: str) -> bool:
        """Send to one connection; False if it is unknown or gone."""
        connection = self._by_id.get(connection_id)
        return connection is not None and self._send(connection, frame)

    def send_to_session(
        self,
        session_id: str,
        frame: str | Callable[[], str],
        *,
        exclude: str | None = None,
        incarnation: str | None = None,
    ) -> int:
        """Send to every connection of a session (admitted to its ``incarnation``, when
        given) but ``exclude``; return how many got it.

        ``frame`` may be a function that makes it, called only if someone receives it.
        """
        targets = self._by_session.get(session_id)
        if not targets:
            return 0
        receivers = [
            c
            for cid, c in targets.items()
            if cid != exclude and (incarnation is None or c.incarnation == incarnation)
        ]
        if not receivers:
            return 0
        text = frame if isinstance(frame, str) else frame()
        sent = 0
        for connection in receivers:
            sent += self._send(connection, text)
        return sent

    def _send(self, connection: Connection, frame: str) -> bool:
        try:
            connection.send(frame)
        except ConnectionClosed:
            self.remove(connection)
            log.debug("dropped closed connection %s", connection.connection_id)
            return False
        return True

    # -- counting ---------------------------------------------------------

    def session_counts(self) -> dict[str, int]:
        """Connections per session."""
        return {sid: len(conns) for sid, conns in self._by_session.items()}

    def user_counts(self) -> dict[str, int]:
        """Connections per user (anonymous connections are not counted here)."""
        return {uid: len(conns) for uid, conns in self._by_user.items()}


def _discard(index: dict[str, dict[str, Connection]], key: str, cid: str) -> None:
    members = index.get(key)
    if members is None:
        return
    members.pop(cid, None)
    if not members:
        del index[key]
