"""Allowed origins as users write them, made into the ones browsers send."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from chatbuddy.errors import ConfigurationError

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
