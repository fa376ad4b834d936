"""Server settings: one frozen object, built by the CLI and passed in.

A setting that ``chatbuddy serve`` offers carries its :class:`Flag` (help text
and what the CLI cannot infer from the type); the CLI makes the option and its
``CHATBUDDY_*`` environment variable from it, so a new setting is one edit here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chatbuddy.errors import ConfigurationError

DAY = 24 * 60 * 60


@dataclass(frozen=True)
class Flag:
    """How a setting appears as an option of ``chatbuddy serve``."""

    help: str
    #: The option when it is not ``--field-name`` (``--allowed-origin`` for a list).
    name: str | None = None
    #: The environment variable when it is not ``CHATBUDDY_FIELD_NAME``.
    envvar: str | None = None
    metavar: str | None = None
    #: Inclusive bounds of a number (None: unbounded on that side).
    low: float | None = None
    high: float | None = None
    #: Seconds written as a duration: 90s, 30m, 24h, 7d.
    duration: bool = False
    #: What ``--help`` shows as the default: True for the value, a text, or False.
    shown: bool | str = True
    #: A duration that may also be ``keep`` (no limit: the value None).
    keep: bool = False


def option(default: Any, help: str, **flag: Any) -> Any:
    """A setting offered on the command line (see :class:`Flag`)."""
    metadata = {"flag": Flag(help, **flag)}
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Everything a running server is configured with; defaults are production-sane."""

    host: str = option("127.0.0.1", "Address to listen on; 0.0.0.0 for every interface.")
    port: int = option(8000, "Port to listen on (0: any free port).", low=0, high=65535)
    #: Name of the agent that answers (see chatbuddy.agents.AGENTS).
    agent: str = option(
        "coordinator",
        "Who answers: coordinator (the shop assistant), echo (tests and benchmarks), "
        "or your own agent as package.module:factory.",
    )
    #: The shop file the assistant answers from; None: the demo shop that ships.
    shop: str | None = option(
        None,
        "The shop file the assistant answers from: JSON, products optionally from a CSV "
        "export (docs/assistant.md); checked at start (default: the demo shop).",
        metavar="PATH",
    )
    #: Where orders are looked up (package.module:factory); None: the shop file's orders.
    order_backend: str | None = option(
        None,
        "Look orders up with your own backend, package.module:factory "
        "(default: the shop file's orders).",
        metavar="MODULE:FACTORY",
    )
    #: Seconds of inactivity after which a session expires (sliding).
    session_ttl: float = option(
        float(DAY),
        "Inactivity after which a session expires (sliding), e.g. 30m, 24h, 7d.",
        duration=True,
        shown="24h",
    )
    #: Messages kept per session; older ones are dropped.
    history_limit: int = option(200, "Messages kept per session.", low=1, high=100_000)
    #: chat_message frames a connection may send per second, sustained (0: no limit).
    rate_limit: float = option(
        5.0, "Chat messages per second one connection may send (0: unlimited).", low=0
    )
    #: ...and in a burst.
    rate_burst: int = option(20, "Chat messages one connection may send at once.", low=1)
    #: chat messages one session may send per second, over all its tabs (0: no limit).
    session_rate_limit: float = option(
        10.0,
        "Chat messages per second one session may send over all its tabs, in bursts of "
        "three seconds' worth (0: unlimited).",
        low=0,
    )
    #: chat messages one client address may send per second (0: no limit).
    ip_rate_limit: float = option(
        20.0,
        "Chat messages per second one client address may send over all its connections, "
        "in bursts of three seconds' worth (0: unlimited).",
        low=0,
    )
    #: frames of any kind (ping, history, session_info too) one connection may send per second.
    frame_rate_limit: float = option(
        20.0,
        "Frames of any kind per second one connection may send, in bursts of three "
        "seconds' worth (0: unlimited).",
        low=0,
    )
    #: refused frames a connection may earn (refilled one a second) before it is closed.
    max_violations: int = option(
        30,
        "Refused frames a connection may send, refilled one a second, before it is closed "
        "with 1008 (0: never closed).",
        low=0,
    )
    #: Shops' origins (scheme://host[:port]) whose pages may chat, besides the page's
    #: own: they open chat sockets and embed the widget. Normalised by parse_origins().
    allowed_origins: tuple[str, ...] = option(
        (),
        "Let this shop's pages embed the widget and open chat sockets, e.g. "
        "https://shop.example (repeatable; the variable takes several, separated by "
        "commas or spaces). '*' is refused: name each shop.",
        name="--allowed-origin",
        metavar="ORIGIN",
    )
    #: Trust X-Forwarded-For / X-Real-Ip (only behind a proxy that sets them).
    trust_proxy_headers: bool = option(
        False, "Take client IPs from X-Forwarded-For (only behind a proxy)."
    )
    #: Where sessions are kept: "sqlite", "sqlite:PATH" or "memory"; None: not said
    #: (SQLite in the user's data folder, or Redis when redis_url is given).
    store: str | None = option(
        None,
        "Where conversations are kept: sqlite (a file that survives restarts and crashes), "
        "sqlite:PATH, or memory (lost at every restart: for tests and benchmarks).",
        metavar="sqlite|sqlite:PATH|memory",
        shown="sqlite at $XDG_DATA_HOME/chatbuddy/chatbuddy.db",
    )
    #: How SQLite commits: "normal" survives a crash of the process, "full" also power loss.
    store_sync: str = option(
        "normal",
        "SQLite commits: normal survives a crash of the server; full also a power loss "
        "or OS crash, at an fsync per commit (docs/storage.md).",
    )
    #: Seconds an idle transcript is kept in SQLite before it is removed; None: kept.
    retention: float | None = option(
        float(90 * DAY),
        "Remove transcripts idle for longer than this from the SQLite file, e.g. 30d, "
        "or keep them: keep.",
        duration=True,
        keep=True,
        shown="90d",
    )
    #: Redis to share sessions and fan-out with other nodes; None: this process only.
    redis_url: str | None = option(
        None,
        "Keep sessions in Redis and act as one service with every other server using it, "
        "e.g. redis://127.0.0.1:6379/0 (default: SQLite, this process only).",
        metavar="URL",
    )
    #: Prefix of every Redis key and channel (several deployments can share a Redis).
    redis_prefix: str = option("chatbuddy:", "Prefix of ChatBuddy's Redis keys and channels.")
    #: Processes serving one port together (SO_REUSEPORT), each a node of the Redis engine.
    workers: int = option(
        1,
        "Processes that serve this port together (SO_REUSEPORT), each a node of the Redis "
        "engine, to use more of the machine's cores; needs --redis-url "
        "(docs/performance.md).",
        low=1,
        high=512,
    )
    #: Opens the admin API; None: the server makes a random one at start.
    admin_token: str | None = option(
        None,
        "Token for the admin API and commands (default: a random one, written to a "
        "file only you can read, where `chatbuddy stats` and friends find it). Visible "
        "to other local users in `ps`: prefer --admin-token-file or the environment "
        "variable.",
    )
    #: Admin tokens with roles (stats, viewer, operator, admin), as hashes; None: only
    #: the admin token above. See chatbuddy.admin_tokens.
    admin_tokens_file: str | None = option(
        None,
        "More admin tokens, each with a role (stats < viewer < operator < admin), from a "
        "file of their hashes made with `chatbuddy tokens add`; re-read when it changes "
        "(docs/admin.md).",
        metavar="PATH",
    )
    #: HS256 secret shared with the shop's site for customers' signed identities (JWT).
    jwt_secret: str | None = option(
        None,
        "Accept customers' signed identities (JWT, HS256) made with this secret, 32 bytes "
        "or more (docs/security.md). Visible to other local users in `ps`: prefer "
        "--jwt-secret-file or the environment variable.",
    )
    #: The shop's JSON Web Key Set, for RS256/ES256 identities.
    jwt_jwks_url: str | None = option(
        None,
        "Accept customers' signed identities (JWT, RS256 or ES256) made with a key of "
        "this JSON Web Key Set; https (http only on this machine); cached, fetched again "
        "every 10 minutes and for an unknown key id.",
        metavar="URL",
    )
    #: The ``aud`` a customer's token must carry (None: tokens must carry none).
    jwt_audience: str | None = option(
        None, "The audience (aud) customers' signed tokens must carry.", metavar="AUD"
    )
    #: The ``iss`` a customer's token must carry (None: not checked).
    jwt_issuer: str | None = option(
        None, "The issuer (iss) customers' signed tokens must carry.", metavar="ISS"
    )
    #: Seconds of clock difference forgiven when checking a signed identity's times.
    jwt_leeway: float = option(
        30.0,
        "Clock difference forgiven when checking a signed token's exp, nbf and iat; an "
        "open connection is closed this long after its token's exp.",
        duration=True,
        shown="30s",
    )
    #: Refuse customers without a signed identity.
    jwt_required: bool = option(
        False,
        "Refuse customers without a signed identity (a chat for signed-in customers only).",
    )
    #: Most open connections (HTTP and WebSocket) at once; kept below the open-file limit.
    max_connections: int = option(
        20_000,
        "Most connections (page, API, WebSocket) at once; the server keeps it below its "
        "open-file limit.",
        low=1,
    )
    #: Most open connections from one client address (0: no cap).
    max_connections_per_ip: int = option(
        500,
        "Most connections from one client address at once (0: no cap); customers behind a "
        "carrier's or an office's NAT share one address.",
        low=0,
    )
    #: Seconds a client may take to send a request's headers, or stay idle between requests.
    http_timeout: float = option(
        20.0,
        "Time a client may take to send a request's headers or stay idle between requests.",
        duration=True,
        shown="20s",
    )
    #: Most sessions kept at once; new ones are refused past it.
    max_sessions: int = option(
        100_000, "Most sessions kept at once; new ones are refused (503) past it.", low=1
    )
    #: New sessions one client address may open per minute (0: no limit).
    new_sessions_per_minute: float = option(
        30.0,
        "New sessions one client address may open per minute, a minute's worth at once "
        "(0: unlimited); reconnecting to a session is not a new one.",
        low=0,
    )
    #: Largest HTTP request body; no endpoint takes a large one.
    max_body_size: int = option(
        64 * 1024,
        "Largest HTTP request body, in bytes (no endpoint takes a large one).",
        low=0,
    )
    #: Most bytes waiting for one slow client before it is closed (code 4000).
    max_queued: int = option(
        1024 * 1024,
        "Most bytes waiting to be sent to one client; a client that reads slower is closed "
        "(code 4000) and fetches the rest with history when it reconnects.",
        low=4096,
    )
    #: Compress chat frames (permessage-deflate) when the client offers it.
    compression: bool = option(
        False,
        "Compress chat frames (permessage-deflate) for clients that offer it: fewer bytes "
        "for more CPU and memory per connection (docs/performance.md); off by default, "
        "as OWASP advises.",
    )
    #: Where the audit log goes: a file, "-" for standard output, None: off.
    audit_log: str | None = option(
        None,
        "Write an audit log, one JSON object per line (ids, sizes, timings, reasons; never "
        "message text or tokens), to PATH, or - for standard output (default: off).",
        metavar="PATH|-",
    )
    #: Serve GET /metrics unauthenticated on 127.0.0.1:PORT instead of the main port's.
    metrics_port: int | None = option(
        None,
        "Serve the Prometheus metrics unauthenticated on 127.0.0.1:PORT instead of "
        "GET /metrics on the main port behind the admin token (docs/operations.md).",
        metavar="PORT",
        low=1,
        high=65535,
    )
    #: Keep no metrics at all (GET /metrics answers 404).
    no_metrics: bool = option(False, "Keep no Prometheus metrics (GET /metrics answers 404).")
    #: -- the llm agent (docs/llm.md) --
    #: An OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM, ...).
    llm_base_url: str = option(
        "https://api.openai.com/v1",
        "The llm agent's OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1 for Ollama. "
        "The key comes from CHATBUDDY_LLM_API_KEY or OPENAI_API_KEY, never from a flag.",
        metavar="URL",
    )
    #: The model the llm agent asks; required with --agent llm.
    llm_model: str | None = option(
        None,
        "The model the llm agent asks, e.g. gpt-4o-mini or llama3.1 (required).",
        metavar="NAME",
    )
    #: One deadline for a whole reply: waiting for a turn, every retry, every tool round.
    llm_timeout: float = option(
        30.0,
        "One deadline for each llm reply, waiting and retries included; past it the "
        "customer gets agent_error (retryable).",
        duration=True,
        shown="30s",
    )
    #: Requests to the model at once, over all sessions of this node.
    llm_max_concurrency: int = option(
        8, "Requests to the model at once, from this server.", low=1, high=10_000
    )
    #: Replies that may wait for a turn; one more is refused with `busy`.
    llm_max_waiting: int = option(
        32,
        "Replies that may wait for a turn with the model; past that a message gets a "
        "`busy` error (0: none wait).",
        low=0,
        high=100_000,
    )
    #: Most tokens the model may write per request.
    llm_max_tokens: int = option(
        800, "Most tokens the model may write in one request.", low=1, high=1_000_000
    )
    #: Tokens one session may spend in all (0: no cap).
    llm_session_tokens: int = option(
        50_000,
        "Model tokens one conversation may use in all; past it, agent_error or the "
        "fallback (0: no cap).",
        low=0,
    )
    #: Tokens this server may spend per UTC day (0: no cap).
    llm_daily_tokens: int = option(
        2_000_000,
        "Model tokens this server may use per day (UTC); past it, agent_error or the "
        "fallback (0: no cap).",
        low=0,
    )
    #: A file with the system prompt instead of the built-in one.
    llm_system_prompt: str | None = option(
        None,
        "A file with your own system prompt ({shop} is replaced by the shop's name; "
        "default: the built-in one, docs/llm.md).",
        metavar="PATH",
    )
    #: Who answers when the model cannot: None (an agent_error), or "coordinator".
    llm_fallback: str | None = option(
        None,
        "When the model cannot answer (timeout, errors, caps, busy), let this agent "
        "answer instead: coordinator (default: none, an agent_error).",
        metavar="coordinator",
    )
    #: The key for the llm API; from the environment only (cli/serve.py), never a flag.
    llm_api_key: str | None = field(default=None, repr=False)
    #: Rounds of tool calls per reply before the reply is given up.
    llm_max_tool_rounds: int = 4
    #: Characters of earlier messages the model sees (the newest fit first).
    llm_history_chars: int = 12_000
    #: Retries of one request to the model (the SDK's, with backoff), within llm_timeout.
    llm_retries: int = 2
    #: Seconds an operator's hold lasts after their last sign of life (a message, or
    #: their console's renewal); then the assistant answers again and says so.
    operator_grace: float = option(
        120.0,
        "How long a conversation an operator took over stays theirs after their last "
        "message or their console's last sign of life; then the assistant answers again "
        "and tells the customer.",
        duration=True,
        shown="2m",
        low=1,
    )
    #: Most bytes of messages in one history page (well under max_queued); ask on with after.
    history_page_bytes: int = 256 * 1024
    #: chat messages waiting for a reply in one session before new ones are refused.
    max_pending_per_session: int = 32
    #: Largest WebSocket frame accepted; 4000 characters of JSON-escaped text fit.
    max_frame_bytes: int = 64 * 1024
    #: Seconds between keep-alive pings of every chat connection.
    ping_interval: float = 30.0
    #: A connection that sent nothing and answered no ping for this long is closed.
    ping_timeout: float = 75.0
    #: How often expired sessions are swept, in seconds.
    sweep_interval: float = 60.0
    #: How long shutdown waits for replies being produced, in seconds.
    shutdown_grace: float = 5.0
    #: Largest permessage-deflate window either side may use (log2 bytes, 9-15).
    compression_window_bits: int = 11
    #: zlib's memLevel for each connection's compressor (1-9).
    compression_mem_level: int = 2
    #: Signing keys older than this (seconds) are fetched again, in the background.
    jwks_refresh: float = 600.0
    #: A token naming an unknown key fetches the key set again at most this often.
    jwks_min_refetch: float = 30.0

    def __repr__(self) -> str:
        # Secrets (the admin token, a Redis URL's password) never reach a log line.
        shown = {
            name: value
            for name, value in self.__dict__.items()
            if name not in ("admin_token", "redis_url", "jwt_secret", "llm_api_key")
        }
        return f"Settings({shown})"

    @property
    def engine(self) -> str:
        """Which engine (``chatbuddy.engine.ENGINES``) these settings run on."""
        if self.redis_url:
            return "redis"
        return "memory" if self.store == "memory" else "sqlite"

    @property
    def store_file(self) -> Path:
        """The SQLite file: ``--store sqlite:PATH``, else :func:`default_store_file`."""
        if self.store is not None and self.store.startswith("sqlite:"):
            return Path(self.store.removeprefix("sqlite:")).expanduser()
        return default_store_file()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port must be 0..65535, got {self.port}")
        if self.session_ttl <= 0:
            raise ConfigurationError(f"session TTL must be positive, got {self.session_ttl}")
        if self.history_limit < 1:
            raise ConfigurationError(f"history limit must be at least 1, got {self.history_limit}")
        if self.rate_limit < 0:
            raise ConfigurationError(f"rate limit must be >= 0, got {self.rate_limit}")
        if self.no_metrics and self.metrics_port is not None:
            raise ConfigurationError(
                "--metrics-port serves the metrics that --no-metrics turns off"
            )
        if self.llm_timeout <= 0:
            raise ConfigurationError(f"--llm-timeout must be positive, got {self.llm_timeout}")
        if self.llm_fallback not in (None, "coordinator"):
            raise ConfigurationError(
                f"--llm-fallback {self.llm_fallback!r}: the only fallback is coordinator"
            )
        # Frozen: the one place the given origins become the ones compared.
        object.__setattr__(self, "allowed_origins", parse_origins(self.allowed_origins))
        check_identity_settings(self)
        self._check_store()
        if self.workers > 1 and not self.redis_url:
            raise ConfigurationError(
                "--workers needs --redis-url: each worker is a node of its own, and only "
                "Redis lets nodes act as one service"
            )

    def _check_store(self) -> None:
        store = self.store
        if (
            store is not None
            and store not in ("memory", "sqlite")
            and not (store.startswith("sqlite:") and store.removeprefix("sqlite:").strip())
        ):
            raise ConfigurationError(
                f"--store must be sqlite, sqlite:PATH or memory, got {store!r}"
            )
        if store is not None and self.redis_url:
            raise ConfigurationError(
                "--redis-url and --store exclude each other: with Redis, sessions are kept "
                "in Redis; give one of them"
            )
        if self.store_sync not in ("normal", "full"):
            raise ConfigurationError(
                f"--store-sync must be normal or full, got {self.store_sync!r}"
            )
        if self.retention is not None and self.retention <= 0:
            raise ConfigurationError(f"retention must be positive, got {self.retention}")
        retention = self.retention
        if self.engine == "sqlite" and retention is not None and retention < self.session_ttl:
            raise ConfigurationError(
                "--retention is shorter than --session-ttl: live sessions would lose "
                "their transcripts; make it at least as long, or keep"
            )

    @property
    def signed_identities(self) -> bool:
        """Whether customers' signed identities (JWT) are checked."""
        return bool(self.jwt_secret or self.jwt_jwks_url)


def check_identity_settings(settings: Settings) -> None:
    """ConfigurationError for identity settings that cannot work (quoting the value)."""
    needs = "needs --jwt-secret(-file) or --jwt-jwks-url"
    if not settings.signed_identities:
        for flag, value in (
            ("--jwt-audience", settings.jwt_audience),
            ("--jwt-issuer", settings.jwt_issuer),
            ("--jwt-required", settings.jwt_required),
        ):
            if value:
                raise ConfigurationError(f"{flag} {needs}: it checks signed identities")
    url = settings.jwt_jwks_url
    if url:
        parts = urlsplit(url)
        local = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if not parts.hostname or parts.scheme not in ("https", "http"):
            raise ConfigurationError(f"--jwt-jwks-url {url!r} is not an https:// URL")
        if parts.scheme == "http" and not local:
            raise ConfigurationError(
                f"--jwt-jwks-url {url!r}: keys fetched over plain http can be forged on the "
                "way; use https (http is accepted only on this machine)"
            )


def default_store_file() -> Path:
    """``$XDG_DATA_HOME/chatbuddy/chatbuddy.db``, else ``~/.local/share/chatbuddy/chatbuddy.db``
    (the XDG base directory rules: a relative XDG_DATA_HOME is ignored)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    folder = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "share"
    return folder / "chatbuddy" / "chatbuddy.db"


_ORIGIN_SEPARATORS = re.compile(r"[\s,]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origins(values: Iterable[str]) -> tuple[str, ...]:
    """The origins in ``values``, each as a browser sends it in ``Origin``.

    Users write origins the ways they see them: several in one value separated by
    commas or spaces (``CHATBUDDY_ALLOWED_ORIGINS="https://a.example, https://b.example"``),
    with a trailing slash, in capitals, with the default port. All of those are
    accepted and normalised (``https://shop.example``), duplicates dropped.
    Raises ConfigurationError, quoting the value, for ``*`` or any wildcard and
    for anything that is not ``http(s)://host[:port]``, rather than keep a value
    that would never match and so silently refuse the shop.
    """
    origins: list[str] = []
    for value in values:
        origins.extend(normalize_origin(item) for item in _ORIGIN_SEPARATORS.split(value) if item)
    return tuple(dict.fromkeys(origins))


def normalize_origin(text: str) -> str:
    """``text`` as the serialised origin browsers send: ``scheme://host[:port]``,
    lower case, no default port, no trailing slash. Raises ConfigurationError."""
    if "*" in text:
        raise ConfigurationError(
            f"allowed origin {text!r}: wildcards are not accepted, because '*' would let "
            "every website's pages chat with the assistant as their visitors; "
            "name each shop's origin instead, e.g. https://shop.example"
        )
    example = "write it as scheme://host[:port], e.g. https://shop.example"
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"allowed origin {text!r} has a bad port; {example}") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConfigurationError(f"allowed origin {text!r} is not an http(s) origin; {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigurationError(
            f"allowed origin {text!r} has more than an origin (a path, query or user); {example}"
        )
    host = parts.hostname
    if not host.isascii():
        host = host.encode("idna").decode("ascii")  # browsers send the punycode form
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": DAY}


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"30m"``, ``"24h"`` or ``"7d"``."""
    match = _DURATION_RE.match(text.lower())
    if match is None:
        raise ConfigurationError(f"expected a duration like 90s, 30m, 24h or 7d, got {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
