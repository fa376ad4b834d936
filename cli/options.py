"""The options of ``chatbuddy serve``, made from the settings' own declarations.

Each field of :class:`chatbuddy.settings.Settings` that carries a ``Flag``
becomes an option with its ``CHATBUDDY_*`` environment variable, in field order;
the type decides the click type (a tuple repeats, a bool is a switch).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import click

from chatbuddy.agents import agent_names
from chatbuddy.agents.loading import is_factory_spec
from chatbuddy.errors import ConfigurationError
from chatbuddy.settings import Flag, Settings, parse_duration

F = TypeVar("F", bound=Callable[..., Any])


class AgentName(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A built-in agent's name, or ``package.module:factory`` (imported when the server starts)."""

    name = "agent"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(agent_names()) + "|MODULE:FACTORY]"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        text = str(value)
        if text in agent_names() or is_factory_spec(text):
            return text
        known = ", ".join(agent_names())
        return self.fail(f"{text!r} is not one of {known}, nor package.module:factory", param, ctx)


#: Settings whose values the CLI checks with a type of its own.
TYPES: dict[str, Callable[[], Any]] = {
    "agent": AgentName,
    "llm_fallback": lambda: click.Choice(["coordinator"]),
    "store_sync": lambda: click.Choice(["normal", "full"]),
}


class Duration(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A duration option: 90, 90s, 30m, 24h, 7d; and ``keep`` (None) where allowed."""

    name = "duration"

    def __init__(self, *, keep: bool = False) -> None:
        # Whether "keep" (no limit) is a value.
        self.keep = keep

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float | None:
        if isinstance(value, int | float):
            return float(value)
        if self.keep and str(value).strip().lower() == "keep":
            return None
        try:
            return parse_duration(str(value))
        except ConfigurationError as exc:
            self.fail(f"{exc}{', or keep' if self.keep else ''}", param, ctx)


def _click_type(field: dataclasses.Field[Any], flag: Flag, kind: Any) -> Any:
    if field.name in TYPES:
        return TYPES[field.name]()
    if flag.duration:
        return Duration(keep=flag.keep)
    bounded = flag.low is not None or flag.high is not None
    if kind is int:
        return click.IntRange(flag.low, flag.high) if bounded else int  # type: ignore[arg-type]
    if kind is float:
        return click.FloatRange(flag.low, flag.high) if bounded else float
    return None


def _option(field: dataclasses.Field[Any], flag: Flag, hints: dict[str, Any]) -> Callable[[F], F]:
    kind = hints[field.name]
    optional = typing.get_origin(kind) in (typing.Union, types.UnionType)
    if optional:
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    multiple = typing.get_origin(kind) is tuple
    default = () if multiple else field.default
    name = flag.name or "--" + field.name.replace("_", "-")
    extra: dict[str, Any] = {}
    if kind is bool:
        extra["is_flag"] = True
    elif not multiple and default is not None:
        extra["default"] = str(default) if flag.duration else default
        extra["show_default"] = flag.shown
    return click.option(
        name,
        field.name,
        type=_click_type(field, flag, kind),
        multiple=multiple,
        envvar=flag.envvar or "CHATBUDDY_" + field.name.upper(),
        show_envvar=True,
        metavar=flag.metavar,
        help=flag.help,
        **extra,
    )


def settings_options(command: F) -> F:
    """Add an option for every setting that has a Flag; the command gets them as
    keyword arguments named after the fields (see :func:`settings_from`)."""
    hints = typing.get_type_hints(Settings)
    flagged = [
        (field, field.metadata["flag"])
        for field in dataclasses.fields(Settings)
        if "flag" in field.metadata
    ]
    for field, flag in reversed(flagged):  # click applies decorators bottom-up
        command = _option(field, flag, hints)(command)
    return command


def settings_from(options: dict[str, Any]) -> Settings:
    """The Settings from the options :func:`settings_options` added (others ignored).

    Raises ConfigurationError for values that cannot work together.
    """
    names = {field.name for field in dataclasses.fields(Settings) if "flag" in field.metadata}
    given = {name: value for name, value in options.items() if name in names}
    if "allowed_origins" in given:
        given["allowed_origins"] = tuple(given["allowed_origins"])
    return Settings(**given)
