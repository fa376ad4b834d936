"""Server settings: one frozen object, built by the CLI and passed in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatbuddy.errors import ConfigurationError

DAY = 24 * 60 * 60


@dataclass(frozen=True)
class Settings:
    """Everything a running server is configured with; defaults are production-sane."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: Name of the agent that answers (see chatbuddy.agents.AGENTS).
    agent: str = "coordinator"
    #: Seconds of inactivity after which a session expires (sliding).
    session_ttl: float = DAY
    #: Messages kept per session; older ones are dropped.
    history_limit: int = 200
    #: chat_message frames a connection may send per second, sustained (0: no limit).
    rate_limit: float = 5.0
    #: ...and in a burst.
    rate_burst: int = 20
    #: chat messages waiting for a reply in one session before new ones are refused.
    max_pending_per_session: int = 32
    #: Largest WebSocket frame accepted; 4000 characters of JSON-escaped text fit.
    max_frame_bytes: int = 64 * 1024
    #: Seconds between keep-alive pings of every chat connection.
    ping_interval: float = 30.0
    #: A connection that sent nothing and answered no ping for this long is closed.
    ping_timeout: float = 75.0
    #: Origins (scheme://host[:port]) allowed besides the page's own.
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    #: How often expired sessions are swept, in seconds.
    sweep_interval: float = 60.0
    #: Trust X-Forwarded-For / X-Real-Ip (only behind a proxy that sets them).
    trust_proxy_headers: bool = False
    #: Redis to share sessions and fan-out with other nodes; None: in-memory engine.
    redis_url: str | None = field(default=None, repr=False)
    #: Prefix of every Redis key and channel (several deployments can share a Redis).
    redis_prefix: str = "chatbuddy:"
    #: Opens the admin API; None: the server makes a random one at start.
    admin_token: str | None = field(default=None, repr=False)
    #: How long shutdown waits for replies being produced, in seconds.
    shutdown_grace: float = 5.0

    @property
    def engine(self) -> str:
        """Which engine (``chatbuddy.engine.ENGINES``) these settings run on."""
        return "redis" if self.redis_url else "memory"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port must be 0..65535, got {self.port}")
        if self.session_ttl <= 0:
            raise ConfigurationError(f"session TTL must be positive, got {self.session_ttl}")
        if self.history_limit < 1:
            raise ConfigurationError(f"history limit must be at least 1, got {self.history_limit}")
        if self.rate_limit < 0:
            raise ConfigurationError(f"rate limit must be >= 0, got {self.rate_limit}")


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": DAY}


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"30m"``, ``"24h"`` or ``"7d"``."""
    match = _DURATION_RE.match(text.lower())
    if match is None:
        raise ConfigurationError(f"expected a duration like 90s, 30m, 24h or 7d, got {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
