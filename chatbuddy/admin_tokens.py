"""Admin roles, and the admin tokens file that gives each token one.

Four roles, each allowed what the one before it is, and more:

==========  =====================================================================
``stats``   the stats endpoint and the metrics: what monitoring needs, no transcripts
``viewer``  plus the session list, transcripts and the live event tail
``operator`` plus taking a conversation over and writing in it
``admin``   plus deleting and exporting a session
==========  =====================================================================

The server's own admin token (made at each start, or ``--admin-token``) has the
role ``admin``. Other tokens live in a tokens file (``serve
--admin-tokens-file``, managed with ``chatbuddy tokens``), one per line, as
their SHA-256 only, so the file opens nothing if it leaks::

    # NAME ROLE HASH CREATED
    grafana stats sha256:9f86d081...0f00a08 2026-11-27T10:00:00Z   (64 hex digits in full)

The server reads the file again whenever it changes, so ``chatbuddy tokens
revoke`` takes effect at the next request, without a restart.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path

from chatbuddy.errors import ConfigurationError
from chatbuddy.tokens import hash_token, new_token

log = logging.getLogger(__name__)


class Role(IntEnum):
    """What a token may do; a higher role may do everything a lower one may."""

    STATS = 1
    VIEWER = 2
    OPERATOR = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        """The role's name as people write it: ``stats``, ``viewer``, ..."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named ``text``; ConfigurationError, listing the roles, otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ConfigurationError(
                f"unknown role {text[:40]!r}; the roles are {ROLE_NAMES}"
            ) from None


#: The roles in order, as messages show them.
ROLE_NAMES = " < ".join(role.label for role in Role)

#: The name the audit log gives the server's own admin token; no token of the file has it.
SERVER_TOKEN_NAME = "server-admin-token"  # noqa: S105 - a name, not a secret
#: A token's name: what the audit log and `chatbuddy tokens list` show.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEADER = (
    "# ChatBuddy admin tokens: NAME ROLE HASH CREATED, one per line (roles: "
    f"{ROLE_NAMES}).\n# Only hashes: edit with `chatbuddy tokens add|list|revoke`.\n"
)


@dataclass(frozen=True)
class TokenEntry:
    """One token of the tokens file: who holds it, its role, its hash."""

    name: str
    role: Role
    #: ``sha256:`` and the hex SHA-256 of the token.
    token_hash: str
    #: When it was made (ISO 8601, UTC), for `chatbuddy tokens list`.
    created: str


def check_name(name: str) -> str:
    """``name`` if it can name a token; ConfigurationError otherwise."""
    if not _NAME_RE.match(name):
        raise ConfigurationError(
            f"token name {name[:70]!r}: use 1-64 characters from A-Z a-z 0-9 _ . : @ -"
        )
    if name == SERVER_TOKEN_NAME:
        raise ConfigurationError(f"token name {name!r} is the server's own token's: choose another")
    return name


def parse_entries(text: str, source: str) -> list[TokenEntry]:
    """The entries of a tokens file's ``text``; ConfigurationError naming the line."""
    entries: list[TokenEntry] = []
    names: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{source}, line {number}"
        if len(fields) == 1:
            raise ConfigurationError(
                f"{where}: one word where NAME ROLE HASH CREATED was expected; this looks "
                "like a token itself: a file holding the one admin token is "
                "--admin-token-file, not --admin-tokens-file"
            )
        if len(fields) != 4:
            raise ConfigurationError(f"{where}: expected NAME ROLE HASH CREATED")
        name, role, token_hash, created = fields
        try:
            check_name(name)
            parsed = Role.parse(role)
        except ConfigurationError as error:
            raise ConfigurationError(f"{where}: {error}") from None
        if not _HASH_RE.match(token_hash):
            raise ConfigurationError(f"{where}: the hash must be sha256: and 64 hex digits")
        if name in names:
            raise ConfigurationError(f"{where}: the name {name!r} is given twice")
        names.add(name)
        entries.append(TokenEntry(name, parsed, token_hash, created))
    return entries


def read_entries(path: Path) -> list[TokenEntry]:
    """The entries of the tokens file at ``path`` (none if it does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"cannot read the admin tokens file {path}: {error}") from None
    return parse_entries(text, str(path))


def write_entries(path: Path, entries: list[TokenEntry]) -> None:
    """Replace the file with ``entries``, atomically, readable only by its owner."""
    lines = [f"{e.name} {e.role.label} {e.token_hash} {e.created}\n" for e in entries]
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_HEADER + "".join(lines))
        os.replace(temporary, path)  # a reader (the server) sees the old file or the new
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def add_token(path: Path, name: str, role: Role, *, now: datetime | None = None) -> str:
    """Make a token for ``name`` with ``role``, store its hash, and return it (the
    only time it is seen). ConfigurationError if the name is taken."""
    check_name(name)
    entries = read_entries(path)
    if any(entry.name == name for entry in entries):
        raise ConfigurationError(
            f"a token named {name!r} exists; revoke it first or choose another name"
        )
    token = new_token()
    created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_entries(path, [*entries, TokenEntry(name, role, "sha256:" + hash_token(token), created)])
    return token


def revoke_token(path: Path, name: str) -> bool:
    """Remove the token named ``name``; whether there was one."""
    entries = read_entries(path)
    kept = [entry for entry in entries if entry.name != name]
    if len(kept) == len(entries):
        return False
    write_entries(path, kept)
    return True


def readable_by_others(path: Path) -> bool:
    """Whether users other than the owner can read ``path`` (hashes, but still a list
    of who may get in)."""
    try:
        return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


class TokenBook:
    """The tokens file as the server uses it: read at start, again when it changes.

    A file that turns unreadable or malformed while the server runs lets no one
    in by it (logged as an error) rather than keep tokens someone meant to
    revoke; the server's own admin token still works.
    """

    def __init__(self, path: Path) -> None:
        # The file (serve --admin-tokens-file).
        self.path = path
        # (inode, size, mtime) of the version read, to notice a change with one stat().
        self._version: tuple[int, int, int] | None = None
        # The tokens of that version.
        self._entries: list[TokenEntry] = []
        if not path.is_file():
            raise ConfigurationError(
                f"the admin tokens file {path} does not exist; make it with "
                f"`chatbuddy tokens add NAME --role viewer --file {path}`"
            )
        self._refresh(at_start=True)

    def holder(self, token: str) -> TokenEntry | None:
        """The entry whose token ``token`` is, if any (every entry is compared, in
        constant time each)."""
        self._refresh()
        digest = ("sha256:" + hash_token(token)).encode()
        found = None
        for entry in self._entries:
            if hmac.compare_digest(entry.token_hash.encode(), digest):
                found = entry
        return found

    def __len__(self) -> int:
        return len(self._entries)

    def _refresh(self, *, at_start: bool = False) -> None:
        try:
            info = self.path.stat()
        except OSError:
            info = None
        version = None if info is None else (info.st_ino, info.st_size, info.st_mtime_ns)
        if version == self._version and not at_start:
            return
        self._version = version
        try:
            self._entries = read_entries(self.path) if info is not None else []
        except ConfigurationError as error:
            if at_start:
                raise
            log.error("admin tokens file unusable, none of its tokens is accepted: %s", error)
            self._entries = []
            return
        if info is None:
            log.error("admin tokens file %s is gone: none of its tokens is accepted", self.path)
        elif not at_start:
            log.info("admin tokens file re-read: %d tokens", len(self._entries))
