"""Products from a CSV export with a header row, the way shop platforms export them.

The columns we read (docs/assistant.md): ``id``, ``name``, ``brand``,
``category``, ``price``, ``stock``, and optionally ``rating`` and ``aliases``
(several separated by ``|``). An export with other headers maps them with
``columns`` (ours -> theirs); ``attribute_columns`` are copied into attributes.
Values are only read here; the shop file's models validate them.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatbuddy.agents.shopfile import CsvProducts

REQUIRED = ("id", "name", "brand", "category", "price", "stock")
OPTIONAL = ("rating", "aliases")


def read_products(path: Path, spec: CsvProducts) -> list[dict[str, Any]]:
    """The products in the CSV at ``path`` as shop-file entries (not validated yet).

    Raises ShopFileError (one line) for a missing file or a missing column.
    """
    from chatbuddy.agents.shopfile import ShopFileError

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=spec.delimiter)
            headers = set(reader.fieldnames or ())
            header = {ours: spec.columns.get(ours, ours) for ours in REQUIRED + OPTIONAL}
            missing = [header[ours] for ours in REQUIRED if header[ours] not in headers]
            missing += [name for name in spec.attribute_columns if name not in headers]
            if missing:
                raise ShopFileError(f"{path}: no column {missing[0]!r} in the header row")
            return [_product(row, header, spec.attribute_columns) for row in reader]
    except OSError as exc:
        raise ShopFileError(f"{path}: cannot read it: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ShopFileError(f"{path}: not a CSV file: {exc}") from None


def _product(row: dict[str, str], header: dict[str, str], attributes: tuple[str, ...]) -> dict[str, Any]:
    entry: dict[str, Any] = {ours: (row.get(theirs) or "").strip() for ours, theirs in header.items()}
    entry["price"] = _number(entry["price"])
    entry["stock"] = _number(entry["stock"])
    if entry["rating"]:
        entry["rating"] = _number(entry["rating"])
    else:
        del entry["rating"]
    entry["aliases"] = [a.strip() for a in entry["aliases"].split("|") if a.strip()]
    entry["attributes"] = {name: row[name].strip() for name in attributes if row.get(name)}
    return entry


def _number(text: str) -> Any:
    """"349 990", "349990.00", "4,7" -> a number; anything else is left for validation to refuse."""
    compact = text.replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    if compact.count(",") == 1 and "." not in compact:
        compact = compact.replace(",", ".")
    try:
        value = float(compact)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value
