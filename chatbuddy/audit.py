"""The audit log: one JSON object per line for every operation that matters.

As the design document asks ("every WebSocket operation is logged"), and as an
operator needs after an incident: connections opened and closed, handshakes
refused and why, messages received and answered, limits hit, admin actions.
Its keys are a fixed set (:data:`KEYS`), so that nobody adds one by accident
that carries what a user wrote, a token or a query string: a record with any
other key is refused with ValueError.

Off unless ``--audit-log PATH`` (or ``-`` for standard output) says where.
Lines are buffered and flushed a few times a second, and on close.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from json.encoder import encode_basestring_ascii as _string
from typing import IO

#: Every key a record may have. Ids, sizes, timings and reasons; never text.
KEYS = frozenset(
    {
        "ts",
        "event",
        "session_id",
        "connection_id",
        "user_id",
        "message_id",
        "in_reply_to",
        "ip",
        "code",
        "reason",
        "chars",
        "bytes",
        "ms",
        "count",
        "node",
        "agent",
        "route",
        "admin",
        "action",
        "operator",
        "role",
        "error_type",
        "resumed",
        "status",
    }
)

Value = str | int | float | bool | None


def _json(value: str | int | float | bool) -> str:
    """One value as JSON (strings escaped to ASCII by the json module's C escaper)."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)  # int or float; repr is JSON for every finite float


class AuditLog:
    """Where audit records go; :meth:`disabled` when none is wanted."""

    def __init__(self, stream: IO[str] | None, *, owned: bool = False) -> None:
        # The open file (or stdout); None when the audit log is off.
        self._stream = stream
        # Whether close() should close the stream (a file we opened, not stdout).
        self._owned = owned
        # The next flush, a few times a second; set by start().
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def disabled(cls) -> AuditLog:
        return cls(None)

    @classmethod
    def open(cls, target: str | None) -> AuditLog:
        """``-`` for standard output, a path to append to (made private to its owner)."""
        if not target:
            return cls.disabled()
        if target == "-":
            return cls(sys.stdout)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return cls(os.fdopen(fd, "a", encoding="utf-8"), owned=True)

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def record(self, event: str, **fields: Value) -> None:
        """Write one record: ``{"ts": ..., "event": event, **fields}`` (None values left out)."""
        if self._stream is None:
            return
        if not KEYS.issuperset(fields):
            unknown = sorted(set(fields) - KEYS)
            raise ValueError(f"audit records have no key {unknown!r}; see audit.KEYS")
        # Formatted by hand: a few microseconds, twice per chat message (json.dumps
        # took three times as long).
        line = f'{{"ts":{time.time():.3f},"event":{_string(event)}'
        for key, value in fields.items():
            if value is not None:
                line += f',"{key}":{_json(value)}'
        self._stream.write(line + "}\n")

    def start(self) -> None:
        """Flush four times a second from now on (in the running event loop)."""
        if self._stream is not None:
            self._timer = asyncio.get_running_loop().call_later(0.25, self._tick)

    def _tick(self) -> None:
        self.flush()
        self._timer = asyncio.get_running_loop().call_later(0.25, self._tick)

    def flush(self) -> None:
        if self._stream is not None:
            self._stream.flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()
        if self._owned and self._stream is not None:
            self._stream.close()
            self._stream = None
