"""The shop file: what a shop tells the assistant, validated once at start.

A shop file is JSON (docs/assistant.md shows a complete one). Its products may
instead come from a CSV export (``products_csv``, see :mod:`chatbuddy.agents.csvimport`).
Every entry is a pydantic model, so a bad file is refused with one line that
names the entry and the field (:class:`ShopFileError`), before a server starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chatbuddy.agents.csvimport import read_products
from chatbuddy.errors import ShopFileError

__all__ = ["LANGUAGES", "Language", "ShopData", "ShopFileError", "load_shop_data"]

Language = Literal["hu", "en"]
LANGUAGES: tuple[Language, ...] = ("hu", "en")
NonEmpty = Annotated[str, Field(min_length=1)]
IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Words(_Entry):
    """Words customers use for something, per language (matched in any language)."""

    hu: tuple[NonEmpty, ...] = ()
    en: tuple[NonEmpty, ...] = ()

    def all(self) -> tuple[str, ...]:
        return self.hu + self.en


class Texts(_Entry):
    """A text the shop wrote, in both languages."""

    hu: NonEmpty
    en: NonEmpty


class Category(_Entry):
    """A kind of product, with its name in both languages."""

    hu: NonEmpty
    en: NonEmpty
    keywords: Words = Words()

    def name(self, lang: Language) -> str:
        return self.hu if lang == "hu" else self.en


class Product(_Entry):
    id: NonEmpty
    name: NonEmpty
    brand: NonEmpty
    category: NonEmpty
    #: In the shop's currency, whole units.
    price: int = Field(ge=0)
    stock: int = Field(ge=0)
    rating: float = Field(default=0.0, ge=0, le=5)
    #: Other names customers use: "ps5", "macbook air".
    aliases: tuple[NonEmpty, ...] = ()
    #: Facts about the product (screen, storage, colour, ...), shown as given.
    attributes: dict[str, str] = Field(default_factory=dict)


class Order(_Entry):
    """An order as the shop's order system knows it.

    ``email`` and ``postcode`` are what a customer proves ownership with;
    ``customer`` is the subject of a verified identity that owns it.
    """

    id: Annotated[str, Field(pattern=r"^\d{4,8}$")]
    status: Literal["processing", "shipped", "delivered", "cancelled"]
    items: tuple[NonEmpty, ...]
    total: int = Field(ge=0)
    placed: IsoDate
    carrier: str | None = None
    tracking: str | None = None
    eta: IsoDate | None = None
    delivered: IsoDate | None = None
    email: NonEmpty
    postcode: Annotated[str, Field(pattern=r"^\d{4}$")]
    customer: str | None = None


class Coupon(_Entry):
    code: NonEmpty
    percent: int = Field(ge=0, le=100)
    min_order: int = Field(default=0, ge=0)
    valid_until: IsoDate
    hu: NonEmpty
    en: NonEmpty


class Policy(_Entry):
    """An answer the shop wrote for a topic (shipping, returns, ...) and the words that ask it."""

    topic: NonEmpty
    keywords: Words
    hu: NonEmpty
    en: NonEmpty


class CsvProducts(_Entry):
    """Products from a CSV export: the file (relative to the shop file) and its columns."""

    path: NonEmpty
    #: Our column name -> the export's header, for exports with other names.
    columns: dict[str, str] = Field(default_factory=dict)
    #: Headers copied into each product's attributes.
    attribute_columns: tuple[str, ...] = ()
    delimiter: str = Field(default=",", min_length=1, max_length=1)


class ShopData(_Entry):
    """A whole shop file."""

    name: NonEmpty
    #: The language of a conversation until the customer shows theirs.
    language: Language = "hu"
    currency: NonEmpty = "HUF"
    categories: dict[str, Category]
    products: tuple[Product, ...] = ()
    products_csv: CsvProducts | None = None
    orders: tuple[Order, ...] = ()
    coupons: tuple[Coupon, ...] = ()
    policies: tuple[Policy, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> ShopData:
        seen: set[str] = set()
        for index, product in enumerate(self.products):
            where = f"products[{index}] ({product.id})"
            if product.id in seen:
                raise ValueError(f"{where}: id {product.id!r} is used twice")
            seen.add(product.id)
            if product.category not in self.categories:
                raise ValueError(f"{where}: category {product.category!r} is not in categories")
        for index, order in enumerate(self.orders):
            unknown = [item for item in order.items if item not in seen]
            if unknown and self.products:
                raise ValueError(f"orders[{index}] ({order.id}): items {unknown} are not products")
        return self


def load_shop_data(path: Path) -> ShopData:
    """Read and validate the shop file at ``path`` (products from its CSV, if it names one).

    Raises ShopFileError with one line saying what is wrong and where.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ShopFileError(f"{path}: cannot read it: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ShopFileError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}") from None
    return shop_data_from(raw, path)


def shop_data_from(raw: Any, path: Path) -> ShopData:
    """Validate ``raw`` (a parsed shop file found at ``path``); see :func:`load_shop_data`."""
    try:
        data = ShopData.model_validate(raw)
    except ValidationError as exc:
        raise ShopFileError(f"{path}: {first_problem(exc, raw)}") from None
    if data.products_csv is None:
        return data
    spec = data.products_csv
    products = read_products(
        path.parent / spec.path, spec.columns, spec.attribute_columns, spec.delimiter
    )
    try:
        return ShopData.model_validate({**raw, "products": products})
    except ValidationError as exc:
        csv_path = data.products_csv.path
        raise ShopFileError(f"{csv_path}: {first_problem(exc, {'products': products})}") from None


def first_problem(error: ValidationError, raw: Any) -> str:
    """The first error as "products[3] (p04) field price: ...", naming the entry by its id."""
    problem = error.errors()[0]
    location = problem["loc"]
    parts: list[str] = []
    node = raw
    for step in location:
        if isinstance(step, int):
            parts[-1] += f"[{step}]"
            entry = node[step] if isinstance(node, list) and step < len(node) else None
            if isinstance(entry, dict) and isinstance(entry.get("id") or entry.get("code"), str):
                parts[-1] += f" ({entry.get('id') or entry.get('code')})"
            node = entry
        else:
            parts.append(str(step))
            node = node.get(step) if isinstance(node, dict) else None
    message = problem["msg"]
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if not parts:
        return message
    if len(parts) == 1:
        return f"{parts[0]}: {message}"
    return f"{' '.join(parts[:-1])} field {parts[-1]}: {message}"
