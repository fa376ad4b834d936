"""``chatbuddy shop check PATH``: validate a shop file without starting a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from chatbuddy.agents.shopfile import ShopData, ShopFileError, load_shop_data

from .errors import ConfigError
from .render import json_line
from .result_tables import shop_summary_table


@click.group()
def shop() -> None:
    """Work with shop files (what the assistant answers from; see docs/assistant.md)."""


@shop.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (for scripts).")
def check(path: Path, as_json: bool) -> None:
    """Validate the shop file at PATH and summarise it; exit code 3 if it is bad.

    \b
    Examples:
      chatbuddy shop check myshop.json
      chatbuddy serve --shop myshop.json      # the same check runs at start
    """
    try:
        data = load_shop_data(path)
    except ShopFileError as exc:
        raise ConfigError(str(exc)) from None
    summary = summarise(data)
    if as_json:
        click.echo(json_line(summary))
        return
    Console().print(shop_summary_table(summary))


def summarise(data: ShopData) -> dict[str, Any]:
    """The shop file in numbers: per category, and in total."""
    categories = [
        {
            "key": key,
            "hu": category.hu,
            "en": category.en,
            "products": sum(p.category == key for p in data.products),
            "in_stock": sum(p.category == key and p.stock > 0 for p in data.products),
        }
        for key, category in data.categories.items()
    ]
    return {
        "name": data.name,
        "language": data.language,
        "currency": data.currency,
        "categories": categories,
        "products": len(data.products),
        "aliases": sum(len(p.aliases) for p in data.products),
        "orders": len(data.orders),
        "coupons": [c.code for c in data.coupons],
        "policies": [p.topic for p in data.policies],
    }
