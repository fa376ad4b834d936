"""How a setting is declared: :func:`option` and its :class:`Flag`, and durations.

``chatbuddy serve`` makes each option from the field's Flag (cli/options.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": DAY}


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"30m"``, ``"24h"`` or ``"7d"``."""
    match = _DURATION_RE.match(text.lower())
    if match is None:
        raise ConfigurationError(f"expected a duration like 90s, 30m, 24h or 7d, got {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
