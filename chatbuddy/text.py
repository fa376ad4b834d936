"""Chat text and identifiers: what we accept, and how we store it.

Chat text is stored as the user wrote it, after Unicode NFC and removal of
control characters (other than newline and tab). We do not "clean" HTML or
SQL words out of it: that mangles honest messages and protects nothing.
Escaping happens where text is rendered (the page uses ``textContent``, the
CLI escapes rich markup and terminal sequences).
"""

from __future__ import annotations

import re
import secrets
import unicodedata

#: Session and user ids: short, printable, safe in URLs, logs and Redis keys.
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
_ID_RE = re.compile(ID_PATTERN)

# C0 controls except tab and newline, DEL, and the C1 block.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is an acceptable session or user id."""
    # fullmatch, not match: "$" would also accept a trailing newline.
    return _ID_RE.fullmatch(value) is not None


def normalize_text(text: str) -> str:
    """Return ``text`` in NFC with control characters (bar ``\\n``, ``\\t``) removed."""
    if text.isascii() and text.isprintable():
        return text  # the common case: nothing to compose, nothing to strip
    return _CONTROL_RE.sub("", unicodedata.normalize("NFC", text))


def new_connection_id() -> str:
    """A connection id, unique across nodes."""
    return "conn_" + secrets.token_hex(8)


#: The longest operator display name, and the longest chat text (the protocol's limit).
MAX_NAME_CHARS = 64
MAX_TEXT_CHARS = 4000


def operator_name(text: str) -> str:
    """A display name as given (``Anna``, ``Kiss Anna``), checked; ValueError if unusable."""
    name = normalize_text(text).strip()
    if not name or len(name) > MAX_NAME_CHARS or any(c in name for c in "\n\t"):
        shown = name[:40]
        raise ValueError(
            f"operator name {shown!r} must be 1-{MAX_NAME_CHARS} characters on one line"
        )
    return name


def operator_text(text: str) -> str:
    """What an operator says or notes, normalised as chat text; ValueError if unusable."""
    content = normalize_text(text)
    if not content.strip():
        raise ValueError("the text is empty")
    if len(content) > MAX_TEXT_CHARS:
        raise ValueError(f"the text is {len(content)} characters; the limit is {MAX_TEXT_CHARS}")
    return content
