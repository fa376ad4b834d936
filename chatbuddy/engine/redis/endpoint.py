"""Where a Redis server is, how to greet it, and what can go wrong talking to it.

Parses ``redis://``, ``rediss://`` (TLS) and ``unix://`` URLs, sends AUTH and
SELECT on every new connection, and defines the errors of the Redis
connection. hiredis (C) packs commands and parses replies; this package needs
nothing else.

Security: error messages name the server (``where``) and never the password
or a command's arguments, which may be users' chat text.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

from chatbuddy.errors import StorageUnavailable

#: What a command argument may be (hiredis packs these).
Arg = str | bytes | int | float

#: hiredis' C command packer. Its stub types the argument as a 1-tuple; any length works.
pack = cast("Callable[[tuple[Arg, ...]], bytes]", hiredis.pack_command)

#: What hiredis raises on bytes that are not RESP.
ProtocolError = hiredis.ProtocolError

#: hiredis' answer when the buffer holds no complete reply yet.
INCOMPLETE = object()

#: Redis quotes the arguments of a command it does not know after this.
_ARGUMENTS_QUOTED = ", with args beginning with:"


# -- errors ---------------------------------------------------------------------


class RedisProblem(StorageUnavailable):
    """Base of every error the Redis connection raises on purpose.

    Every one of them is, to the chat layer, the store being unavailable: a
    client hears ``storage_unavailable`` and the log says which it was.
    """


class RedisUnavailable(RedisProblem):
    """Redis is down or out of reach: refused, lost, or silent past a timeout.

    Commands that were in flight may or may not have run. Retrying later is
    the remedy; the next command reconnects by itself.
    """


class RedisBusy(RedisProblem):
    """This client already has ``max_pending`` commands unsent or unanswered.

    *We* are overloaded (Redis may be fine): the command was not sent. Shed
    load rather than queue more.
    """


class RedisReplyError(RedisProblem):
    """Redis answered a command with an error (``OOM ...``, ``NOSCRIPT ...``).

    hiredis builds these from error replies, with the reply's text.
    """

    def __init__(self, message: str) -> None:
        # An unknown command's error quotes its arguments; they may be chat text.
        message = message.split(_ARGUMENTS_QUOTED, 1)[0]
        super().__init__(message)
        # The error's first word (NOSCRIPT, WRONGTYPE, READONLY...), to branch on.
        self.code = message.split(" ", 1)[0]


def refused(where: str, reply: RedisReplyError) -> RedisUnavailable:
    """The error for a server that rejects our AUTH or SELECT; chained to its reply."""
    error = RedisUnavailable(f"Redis at {where} refused the connection's setup: {reply}")
    error.__cause__ = reply
    return error


# -- where the server is ----------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A parsed Redis URL: how to reach the server and what to send first."""

    # TCP host and port (ignored when ``path`` is set).
    host: str
    port: int
    # A Unix socket's path instead of TCP.
    path: str | None
    # The database SELECTed on every new connection.
    db: int
    # AUTH's arguments; no AUTH without a password.
    username: str | None
    password: str | None = field(repr=False)
    # TLS for rediss:// URLs.
    tls: ssl.SSLContext | None

    @property
    def where(self) -> str:
        """``host:port/db`` (or ``unix:path/db``) for log lines; never the password."""
        place = f"unix:{self.path}" if self.path is not None else f"{self.host}:{self.port}"
        return f"{place}/{self.db}"

    def handshake(self, *, select: bool) -> list[tuple[Arg, ...]]:
        """The commands a new connection sends before any other (AUTH, SELECT)."""
        commands: list[tuple[Arg, ...]] = []
        if self.password is not None:
            if self.username is None:
                commands.append(("AUTH", self.password))
            else:
                commands.append(("AUTH", self.username, self.password))
        if select and self.db != 0:
            commands.append(("SELECT", self.db))
        return commands

    async def open(self, protocol: asyncio.Protocol, connect_timeout: float) -> asyncio.Transport:
        """Connect ``protocol`` to the server; raises RedisUnavailable if it cannot."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                if self.path is not None:
                    transport, _ = await loop.create_unix_connection(lambda: protocol, self.path)
                else:
                    transport, _ = await loop.create_connection(
                        lambda: protocol,
                        self.host,
                        self.port,
                        ssl=self.tls,
                        server_hostname=self.host if self.tls is not None else None,
                    )
        except TimeoutError:
            raise RedisUnavailable(
                f"cannot connect to Redis at {self.where} within {connect_timeout:g} s"
            ) from None
        except OSError as exc:  # refused, unreachable, TLS failure (SSLError is an OSError)
            raise RedisUnavailable(f"cannot connect to Redis at {self.where}: {exc}") from exc
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # A peer that vanished without a FIN is noticed eventually even when idle.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return transport


def parse_url(url: str) -> Endpoint:
    """``redis://[[user]:password@]host[:port][/db]``, ``rediss://...``, ``unix:///path?db=N``.

    Raises ValueError for anything else; the message never holds the password.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            f"a Redis URL starts with redis://, rediss:// or unix://, not {parts.scheme!r}"
        )
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"db", "ssl_cert_reqs"})
    if unknown:
        raise ValueError(f"unsupported Redis URL option(s): {', '.join(unknown)}")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None and password is None:
        raise ValueError("a Redis URL with a user name needs a password too (user:password@)")
    db_text = query.get("db", "0")
    if parts.scheme != "unix" and parts.path.strip("/"):
        db_text = parts.path.strip("/")
    try:
        db = int(db_text)
    except ValueError:
        raise ValueError(f"a Redis database is a number, got {db_text!r}") from None
    tls = None
    if parts.scheme == "rediss":
        tls = ssl.create_default_context()
        cert_reqs = query.get("ssl_cert_reqs", "required").lower()
        if cert_reqs == "none":
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        elif cert_reqs != "required":
            raise ValueError(f"ssl_cert_reqs is 'none' or 'required', not {cert_reqs!r}")
    elif "ssl_cert_reqs" in query:
        raise ValueError("ssl_cert_reqs applies to rediss:// URLs only")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// Redis URL needs a socket path: unix:///path/to/redis.sock")
        return Endpoint("", 0, parts.path, db, username, password, None)
    port = parts.port if parts.port is not None else 6379
    return Endpoint(parts.hostname or "localhost", port, None, db, username, password, tls)


def reader() -> hiredis.Reader:
    """A reply parser: str for bulk strings, RedisReplyError for error replies."""
    return hiredis.Reader(
        replyError=RedisReplyError, encoding="utf-8", errors="replace", notEnoughData=INCOMPLETE
    )
