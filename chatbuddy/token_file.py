"""The admin token file: how the CLI on this machine gets into a local server.

``chatbuddy serve`` writes its admin token to a per-user runtime file, readable
only by its owner and keyed by port; the CLI reads it when it talks to a
server on this machine. So ``chatbuddy stats`` just works locally and nobody
else on the machine gets in.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from chatbuddy.errors import ConfigurationError

ENV_RUNTIME_DIR = "CHATBUDDY_RUNTIME_DIR"


def runtime_dir() -> Path:
    """Where token files live.

    ``$CHATBUDDY_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/chatbuddy``, else
    ``~/.local/state/chatbuddy``.
    """
    if os.environ.get(ENV_RUNTIME_DIR):
        return Path(os.environ[ENV_RUNTIME_DIR])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "chatbuddy"
    return Path.home() / ".local" / "state" / "chatbuddy"


def token_path(port: int) -> Path:
    return runtime_dir() / f"admin-{port}.token"


def write_token(port: int, token: str) -> Path:
    """Write ``token`` for ``port`` where only this user can read it; return the path."""
    directory = runtime_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigurationError(
            f"{directory} is not private to this user; fix its owner or mode (chmod 700)"
        )
    path = token_path(port)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.replace(temporary, path)  # atomic: a reader sees the old token or the new one
    return path


def read_token(port: int) -> str | None:
    """The token a local server on ``port`` wrote, or None."""
    try:
        text = token_path(port).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def remove_token(port: int, token: str) -> None:
    """Remove the file, unless another server on the port has replaced it since."""
    if read_token(port) == token:
        with contextlib.suppress(OSError):
            token_path(port).unlink()
