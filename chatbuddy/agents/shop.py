"""The demo shop the coordinator answers from: products, orders, coupons.

Shipped as package data (``data/shop.json``) so answers are real look-ups.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

_WORD_RE = re.compile(r"\w+")
_ORDER_NUMBER_RE = re.compile(r"(?<![\w-])(?:ord-?|#)?(\d{4,8})(?!\w)", re.IGNORECASE)


def words(text: str) -> list[str]:
    """Lower-case word tokens; hyphens and punctuation split ("S24-nek" -> s24, nek)."""
    return _WORD_RE.findall(text.lower())


@dataclass(frozen=True)
class Product:
    # cached_property needs a __dict__; frozen only blocks assignment, not the cache.
    id: str
    name: str
    brand: str
    category: str
    price: int
    stock: int
    rating: float

    @functools.cached_property
    def model_words(self) -> tuple[str, ...]:
        """The name's words without the brand: people say "iPhone 15", not "Apple iPhone 15".

        Computed once per product, not once per message.
        """
        brand = set(words(self.brand))
        return tuple(w for w in words(self.name) if w not in brand)


@dataclass(frozen=True)
class Category:
    key: str
    names: dict[str, str]
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Order:
    id: str
    status: str
    items: tuple[str, ...]
    total: int
    placed: str
    carrier: str | None = None
    tracking: str | None = None
    eta: str | None = None
    delivered: str | None = None


@dataclass(frozen=True)
class Coupon:
    code: str
    percent: int
    min_order: int
    valid_until: str
    description: dict[str, str]


class Shop:
    """The catalogue, with the look-ups the sub-agents need."""

    def __init__(
        self,
        products: list[Product],
        categories: list[Category],
        orders: list[Order],
        coupons: list[Coupon],
    ) -> None:
        # The catalogue, in the shop file's order (ties in a ranking keep it).
        self.products = products
        # Category key -> its names in both languages.
        self.categories = {c.key: c for c in categories}
        # Order number -> order, for status questions.
        self.orders = {o.id: o for o in orders}
        # Coupons on offer now.
        self.coupons = coupons
        # Product id -> product, for look-ups by id (tools, tests).
        self._by_id = {p.id: p for p in products}
        # Lower-cased brand -> brand, for recognising brands in messages.
        self._brands = {p.brand.lower(): p.brand for p in products}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shop:
        return cls(
            products=[Product(**p) for p in data["products"]],
            categories=[
                Category(
                    key=key,
                    names={"hu": c["hu"], "en": c["en"]},
                    keywords=tuple(c["keywords"]),
                )
                for key, c in data["categories"].items()
            ],
            orders=[Order(**{**o, "items": tuple(o["items"])}) for o in data["orders"]],
            coupons=[
                Coupon(
                    code=c["code"],
                    percent=c["percent"],
                    min_order=c["min_order"],
                    valid_until=c["valid_until"],
                    description={"hu": c["hu"], "en": c["en"]},
                )
                for c in data["coupons"]
            ],
        )

    @classmethod
    def demo(cls) -> Shop:
        """The demo shop that ships with ChatBuddy."""
        text = resources.files("chatbuddy.agents").joinpath("data/shop.json").read_text("utf-8")
        return cls.from_dict(json.loads(text))

    def product(self, product_id: str) -> Product | None:
        return self._by_id.get(product_id)

    def find_products(self, tokens: list[str]) -> list[Product]:
        """Products named in the message, best match first.

        A product matches when every word of its model name starts a word of the
        message (Hungarian suffixes: "s24-nek", "iphone-t"); numbers must match
        whole, so "15" does not match "150". Longer names win ties, so
        "iPhone 15 Pro" beats "iPhone 15" when both match.
        """
        found = [p for p in self.products if _all_words_present(p.model_words, tokens)]
        found.sort(key=lambda p: len(p.model_words), reverse=True)
        return found

    def find_category(self, tokens: list[str]) -> Category | None:
        for category in self.categories.values():
            if any(t.startswith(k) for k in category.keywords for t in tokens):
                return category
        return None

    def find_brand(self, tokens: list[str]) -> str | None:
        return next((self._brands[t] for t in tokens if t in self._brands), None)

    def in_category(self, key: str) -> list[Product]:
        return [p for p in self.products if p.category == key]

    def by_brand(self, brand: str) -> list[Product]:
        return [p for p in self.products if p.brand == brand]

    def similar_to(self, product: Product, count: int = 3) -> list[Product]:
        """In-stock products of the same category, closest in price first."""
        others = [
            p for p in self.in_category(product.category) if p.id != product.id and p.stock > 0
        ]
        others.sort(key=lambda p: abs(p.price - product.price))
        return others[:count]

    def popular(self, products: list[Product] | None = None, count: int = 3) -> list[Product]:
        """The best-rated products in stock."""
        pool = [p for p in (self.products if products is None else products) if p.stock > 0]
        return sorted(pool, key=lambda p: p.rating, reverse=True)[:count]


def order_numbers(text: str) -> list[str]:
    """Order numbers mentioned in ``text`` ("10042", "#10042", "ORD-10042")."""
    return _ORDER_NUMBER_RE.findall(text)


def _all_words_present(name_tokens: tuple[str, ...], tokens: list[str]) -> bool:
    return all(any(_word_matches(n, t) for t in tokens) for n in name_tokens)


def _word_matches(name_word: str, word: str) -> bool:
    if name_word.isdigit():
        return word == name_word
    return word.startswith(name_word)
