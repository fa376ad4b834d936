"""Which server to talk to, and with which admin token."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from chatbuddy import token_file
from chatbuddy.errors import TokenMissing

DEFAULT_URL = "http://127.0.0.1:8000"
#: Hosts for which this machine's admin token files apply.
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}  # noqa: S104


@dataclass(frozen=True)
class Target:
    """A server's base URL (``http://HOST:PORT``) and the admin token given for it (if any)."""

    url: str
    token: str | None = None

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def is_local(self) -> bool:
        return (urlsplit(self.url).hostname or "") in LOCAL_HOSTS

    def http(self, path: str) -> str:
        return self.url + path

    def ws(self, path: str) -> str:
        return "ws" + self.url[len("http") :] + path

    def admin_token(self) -> str:
        """The token to send: the one given, else the local server's token file.

        Read anew on each call, so a reconnect after a server restart picks up
        the new server's token. Raises TokenMissing when there is none.
        """
        if self.token:
            return self.token
        if self.is_local:
            token = token_file.read_token(self.port)
            if token:
                return token
            where = token_file.token_path(self.port)
            raise TokenMissing(
                f"no admin token for {self.url}: none found at {where}; is `chatbuddy serve` "
                "running? (for another server, pass --token-file or set CHATBUDDY_ADMIN_TOKEN)"
            )
        raise TokenMissing(
            f"{self.url} is not on this machine: pass its admin token with --token-file "
            "or CHATBUDDY_ADMIN_TOKEN"
        )
