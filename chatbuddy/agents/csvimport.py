"""Products from a CSV export with a header row, the way shop platforms export them.

The columns we read (docs/assistant.md): ``id``, ``name``, ``brand``,
``category``, ``price``, ``stock``, and optionally ``rating`` and ``aliases``
(several separated by ``|``). An export with other headers maps them with
``columns`` (ours -> theirs); ``attribute_columns`` are copied into attributes.
Values are only read here; the shop file's models validate them.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chatbuddy.errors import ShopFileError

REQUIRED = ("id", "name", "brand", "category", "price", "stock")
OPTIONAL = ("rating", "aliases")


def read_products(
    path: Path,
    columns: Mapping[str, str],
    attribute_columns: Sequence[str] = (),
    delimiter: str = ",",
) -> list[dict[str, Any]]:
    """The products in the CSV at ``path`` as shop-file entries (not validated yet).

    ``columns`` maps our column names to the export's headers. Raises ShopFileError
    (one line) for a missing file or a missing column.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            headers = set(reader.fieldnames or ())
            header = {ours: columns.get(ours, ours) for ours in REQUIRED + OPTIONAL}
            missing = [header[ours] for ours in REQUIRED if header[ours] not in headers]
            missing += [name for name in attribute_columns if name not in headers]
            if missing:
                raise ShopFileError(f"{path}: no column {missing[0]!r} in the header row")
            return [_product(row, header, attribute_columns) for row in reader]
    except OSError as exc:
        raise ShopFileError(f"{path}: cannot read it: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ShopFileError(f"{path}: not a CSV file: {exc}") from None


def _product(
    row: dict[str, str], header: dict[str, str], attributes: Sequence[str]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        ours: (row.get(theirs) or "").strip() for ours, theirs in header.items()
    }
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
    """A number from "349 990", "349990.00" or "4,7"; other text is returned for validation
    to refuse."""
    compact = text.replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    if compact.count(",") == 1 and "." not in compact:
        compact = compact.replace(",", ".")
    try:
        value = float(compact)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value
