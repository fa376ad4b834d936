"""Plug-ins named as ``package.module:factory`` (``--agent``, ``--order-backend``)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from chatbuddy.errors import ConfigurationError

_SPEC_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_factory_spec(text: str) -> bool:
    """Whether ``text`` has the ``package.module:factory`` form."""
    return _SPEC_RE.match(text) is not None


def load_factory(spec: str, what: str) -> Callable[[], Any]:
    """The callable ``spec`` names; ConfigurationError (one line) if it cannot be had."""
    if not is_factory_spec(spec):
        raise ConfigurationError(f"{what} {spec!r} is not of the form package.module:factory")
    module_name, attribute = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error of the plug-in itself, too
        raise ConfigurationError(
            f"{what} {spec!r}: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigurationError(f"{what} {spec!r}: {module_name} has no callable {attribute}")
    return factory  # type: ignore[no-any-return]
