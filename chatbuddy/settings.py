"""Server settings: one frozen object, built by the CLI and passed in.

A setting that ``chatbuddy serve`` offers carries its :class:`Flag` (help text
and what the CLI cannot infer from the type); the CLI makes the option and its
``CHATBUDDY_*`` environment variable from it, so a new setting is one edit: here,
or in the base it belongs to (settings_server.py, settings_llm.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from chatbuddy.errors import ConfigurationError
from chatbuddy.settings_flags import DAY, Flag, option, parse_duration
from chatbuddy.settings_llm import LlmSettings
from chatbuddy.settings_origins import normalize_origin, parse_origins

# The fields are declared in bases, in --help order: settings_server.py (listening,
# limits, storage, identity, admin, metrics), settings_llm.py, then the rest here.
__all__ = [
    "DAY",
    "Flag",
    "Settings",
    "check_identity_settings",
    "default_store_file",
    "normalize_origin",
    "option",
    "parse_duration",
    "parse_origins",
]


@dataclass(frozen=True)
class Settings(LlmSettings):
    """Everything a running server is configured with; defaults are production-sane."""

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
