"""The shop the assistant answers from: a catalogue and an order lookup, each a Protocol.

The shipped demo shop (``data/shop.json``) is the default; ``--shop PATH``
loads another shop file (:mod:`chatbuddy.agents.shopfile`), and
``--order-backend module:factory`` replaces the order lookup with a shop's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Protocol

from chatbuddy.agents.shopfile import (
    Category,
    Coupon,
    Language,
    Order,
    Policy,
    Product,
    ShopData,
    load_shop_data,
    shop_data_from,
)

__all__ = [
    "Catalogue",
    "Category",
    "Coupon",
    "FileOrders",
    "Order",
    "OrderBackend",
    "Policy",
    "Product",
    "Shop",
]


class Catalogue(Protocol):
    """What the shop sells and says; read once, when the assistant is built."""

    @property
    def name(self) -> str: ...
    @property
    def language(self) -> Language:
        """The language of a conversation until the customer shows theirs."""

    @property
    def currency(self) -> str: ...
    @property
    def categories(self) -> Mapping[str, Category]: ...
    @property
    def products(self) -> Sequence[Product]: ...
    @property
    def coupons(self) -> Sequence[Coupon]: ...
    @property
    def policies(self) -> Sequence[Policy]: ...


class OrderBackend(Protocol):
    """Finds an order by its number. It says nothing about who may see it:
    the assistant's ownership rule (:mod:`chatbuddy.agents.ownership`) does."""

    async def find(self, number: str) -> Order | None:
        """The order numbered ``number``, or None; raising is an agent error."""


class Shop:
    """A catalogue read from a shop file (the demo shop by default)."""

    def __init__(self, data: ShopData) -> None:
        # The validated file, as given.
        self.data = data
        # Category key -> category, in the file's order.
        self.categories: Mapping[str, Category] = data.categories
        # Product id -> product, for look-ups by id.
        self._by_id = {p.id: p for p in data.products}

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def language(self) -> Language:
        return self.data.language

    @property
    def currency(self) -> str:
        return self.data.currency

    @property
    def products(self) -> Sequence[Product]:
        return self.data.products

    @property
    def coupons(self) -> Sequence[Coupon]:
        return self.data.coupons

    @property
    def policies(self) -> Sequence[Policy]:
        return self.data.policies

    @property
    def orders(self) -> Sequence[Order]:
        """The orders in the file (the demo's, and tests')."""
        return self.data.orders

    def product(self, product_id: str) -> Product | None:
        return self._by_id.get(product_id)

    @classmethod
    def load(cls, path: Path) -> Shop:
        """The shop file at ``path``; raises ShopFileError naming what is wrong."""
        return cls(load_shop_data(path))

    @classmethod
    def demo(cls) -> Shop:
        """The demo shop that ships with ChatBuddy."""
        import json

        text = resources.files("chatbuddy.agents").joinpath("data/shop.json").read_text("utf-8")
        return cls(shop_data_from(json.loads(text), Path("chatbuddy/agents/data/shop.json")))


class FileOrders:
    """The orders of a shop file: the default order backend."""

    #: Looked up in memory: nothing to wait for (see chatbuddy.agents.base.Agent).
    answers_at_once = True

    def __init__(self, orders: Sequence[Order]) -> None:
        # Order number -> order.
        self._orders = {o.id: o for o in orders}

    async def find(self, number: str) -> Order | None:
        return self._orders.get(number)
