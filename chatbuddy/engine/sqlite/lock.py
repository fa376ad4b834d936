"""One file, one process: an exclusive lock beside the database file.

Two servers writing one file would each keep its own idea of the sessions in
memory and hand out the same message ids. The lock is ``flock`` on
``PATH.lock`` (not on the database itself: closing any other descriptor of a
file drops SQLite's own POSIX locks on it). The kernel releases it when the
process ends, however it ends, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from chatbuddy.engine.sqlite.schema import StoreFileError


class FileLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, database: Path) -> None:
        # The database this lock guards, for messages.
        self._database = database
        # The lock file beside it.
        self.path = database.with_name(database.name + ".lock")
        # The open, locked descriptor; None while not held.
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise StoreFileError naming the process that has it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreFileError(f"cannot use {self._database}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreFileError(
                f"{self._database} is in use by another ChatBuddy (pid {holder}); "
                "one file serves one process: stop that server or choose another "
                "--store sqlite:PATH"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing releases the flock
