"""The server's settings up to the llm agent's: listening, limits, storage, identity,
admin and metrics. :class:`chatbuddy.settings.Settings` extends them; the field
order here is the order of ``chatbuddy serve --help``.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatbuddy.settings_flags import DAY, option


@dataclass(frozen=True)
class ServerSettings:
    """The settings before the llm agent's (see :class:`chatbuddy.settings.Settings`)."""

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
