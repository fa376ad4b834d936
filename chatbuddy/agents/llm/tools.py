"""The shop's operations, offered to the model as tools.

Each tool's arguments are a pydantic model; the JSON schema the model sees is
generated from it (:func:`tool_schemas`), and what the model sends is
validated against the same model. The answers are data the shop owns: the
catalogue is searched with the offline assistant's own reader and queries
(:mod:`chatbuddy.agents.understanding`, :mod:`chatbuddy.agents.product_answers`),
and an order is shown only under :mod:`chatbuddy.agents.ownership`'s rule, with
the same wrong-proof budget, carried in the conversation's
:class:`~chatbuddy.agents.context.Context` (so switching to the offline
assistant, or back, does not reset it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chatbuddy.agents.base import ToolFinished
from chatbuddy.agents.context import Context
from chatbuddy.agents.ownership import WRONG_PROOFS_ALLOWED, owns, proofs_left
from chatbuddy.agents.product_answers import LIST_LENGTH, Query
from chatbuddy.agents.shop import Catalogue, Order, OrderBackend, Product
from chatbuddy.agents.understanding import Reader
from chatbuddy.errors import AgentFailed

#: A tool's answer is cut to this many characters of JSON (a model's context is finite).
MAX_RESULT_CHARS = 6000
#: A tool's arguments longer than this are refused before they are parsed.
MAX_ARGUMENT_CHARS = 2000

Text = Annotated[str, Field(min_length=1, max_length=200)]


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchProducts(_Arguments):
    """Find products in the shop's catalogue by the customer's words (a name, a model,
    a kind of product, a brand), a category, a brand and a price range. Returns each
    product's id, name, brand, category, price, stock and rating, from the catalogue."""

    text: Text | None = Field(
        default=None, description="The customer's words for what they want, as they wrote them."
    )
    category: Text | None = Field(default=None, description="A category key (see the list).")
    brand: Text | None = Field(default=None, description="A brand, as the shop writes it.")
    min_price: int | None = Field(default=None, ge=0, description="Lowest price, shop currency.")
    max_price: int | None = Field(default=None, ge=0, description="Highest price, shop currency.")
    in_stock_only: bool = Field(default=False, description="Only products in stock.")
    order: Literal["price", "-price", "rating"] | None = Field(
        default=None, description="price: cheapest first; -price: dearest first; rating: best."
    )
    limit: int = Field(default=5, ge=1, le=LIST_LENGTH, description="How many to return.")


class GetProduct(_Arguments):
    """One product's details: price, stock, rating and attributes (screen, storage...)."""

    product_id: Text = Field(description="The product's id, as search_products returned it.")


class CompareProducts(_Arguments):
    """Several products side by side: price, stock, rating, attributes."""

    product_ids: list[Text] = Field(min_length=2, max_length=4, description="Product ids.")


class OrderStatus(_Arguments):
    """An order's status, items, carrier, tracking number and delivery date. The details
    are given only with a proof that the order is the customer's: the e-mail address or
    the delivery postcode given with the order. Ask the customer for them; never guess.
    Wrong proofs are limited: after a few, no order details are given in this
    conversation."""

    order_number: Annotated[str, Field(pattern=r"^\d{4,8}$")] = Field(
        description="The order number the customer gave (4-8 digits)."
    )
    email: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="The e-mail address the customer says the order was placed with."
    )
    postcode: Annotated[str, Field(pattern=r"^\d{4}$")] | None = Field(
        default=None, description="The delivery postcode the customer gave (4 digits)."
    )


class ListCoupons(_Arguments):
    """The shop's coupons on offer: code, discount, minimum order, valid until."""


class ShopPolicy(_Arguments):
    """The shop's own text on a topic (shipping, returns, payment, contact...), in
    Hungarian and English."""

    topic: Text = Field(description="A policy topic (see the list).")


class HandoffToHuman(_Arguments):
    """Ask a person from the shop to take over this conversation: when the customer asks
    for one, or when the tools cannot help."""

    reason: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="Why, in a few words (e.g. customer_asked)."
    )


@dataclass(frozen=True)
class Tool:
    """A tool as offered: its name, what it does, its arguments' model."""

    name: str
    arguments: type[_Arguments]

    def schema(self, extra: str = "") -> dict[str, Any]:
        """The chat completions ``tools`` entry, from the model's JSON schema."""
        description = " ".join((self.arguments.__doc__ or "").split())
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": f"{description} {extra}".strip(),
                "parameters": self.arguments.model_json_schema(),
            },
        }


TOOLS: tuple[Tool, ...] = (
    Tool("search_products", SearchProducts),
    Tool("get_product", GetProduct),
    Tool("compare_products", CompareProducts),
    Tool("order_status", OrderStatus),
    Tool("list_coupons", ListCoupons),
    Tool("shop_policy", ShopPolicy),
    Tool("handoff_to_human", HandoffToHuman),
)
_BY_NAME = {tool.name: tool for tool in TOOLS}


def tool_schemas(catalogue: Catalogue) -> list[dict[str, Any]]:
    """Every tool's schema, with the shop's category keys and policy topics named."""
    categories = ", ".join(f"{key} ({c.en})" for key, c in catalogue.categories.items())
    topics = ", ".join(p.topic for p in catalogue.policies)
    extra = {
        "search_products": f"Categories: {categories}." if categories else "",
        "shop_policy": f"Topics: {topics}." if topics else "",
    }
    return [tool.schema(extra.get(tool.name, "")) for tool in TOOLS]


def refused(message: str) -> AgentFailed:
    """A tool call ChatBuddy will not run: the reply ends with agent_error."""
    return AgentFailed(
        "the assistant made a request the shop does not answer; please try again",
        reason=message,
        retryable=True,
    )


class ShopTools:
    """The tools of one reply: they read the shop and keep the conversation's context."""

    def __init__(
        self,
        catalogue: Catalogue,
        orders: OrderBackend,
        reader: Reader,
        *,
        context: Context,
        verified_user: str | None,
    ) -> None:
        # What the shop sells and says.
        self._shop = catalogue
        # Where orders are looked up.
        self._orders = orders
        # The offline assistant's reader: finds products by the customer's words.
        self._reader = reader
        # The conversation so far (wrong proofs, owned orders); updated by order_status.
        self.context = context
        # A verified identity's subject, which may own orders.
        self._verified_user = verified_user
        # Set by handoff_to_human: why a person should take over.
        self.handoff: str | None = None
        # Product id -> product.
        self._products = {p.id: p for p in catalogue.products}

    @staticmethod
    def check(name: str) -> None:
        """Raise AgentFailed (``refused``) unless ``name`` is one of the tools."""
        if name not in _BY_NAME:
            raise refused(f"unknown_tool:{name[:40]}")

    async def run(self, name: str, raw_arguments: str) -> tuple[str, ToolFinished]:
        """Run tool ``name`` with the model's JSON ``raw_arguments``: the result as the
        model reads it, and what to tell admins. Raises AgentFailed (``refused``) for
        an unknown tool or arguments that do not fit its schema."""
        tool = _BY_NAME.get(name)
        if tool is None:
            raise refused(f"unknown_tool:{name[:40]}")
        if len(raw_arguments) > MAX_ARGUMENT_CHARS:
            raise refused(f"arguments_too_long:{name}")
        try:
            arguments = tool.arguments.model_validate_json(raw_arguments or "{}")
        except ValidationError:
            raise refused(f"bad_arguments:{name}") from None
        started = time.perf_counter()
        handler: Callable[[Any], Any] = getattr(self, "_" + name)
        result, ok = await handler(arguments)
        seconds = time.perf_counter() - started
        text = json.dumps(result, ensure_ascii=False)
        if len(text) > MAX_RESULT_CHARS:
            text = text[:MAX_RESULT_CHARS]
        shown = arguments.model_dump(exclude_none=True)
        return text, ToolFinished(tool=name, arguments=shown, seconds=seconds, ok=ok)

    # -- the tools ----------------------------------------------------------------

    async def _search_products(self, a: SearchProducts) -> tuple[dict[str, Any], bool]:
        pool: list[Product] = list(self._shop.products)
        category, brand = a.category, a.brand
        if a.text:
            reading = self._reader.read(a.text)
            if reading.found.product is not None:
                pool = [reading.found.product]
            elif reading.found.choices:
                pool = list(reading.found.choices)
            elif reading.categories or reading.brands:
                category = category or (reading.categories[0] if reading.categories else None)
                brand = brand or (reading.brands[0] if reading.brands else None)
            else:
                pool = []
        if category is not None and category not in self._shop.categories:
            known = list(self._shop.categories)
            return {"error": f"no category {category!r}", "categories": known}, False
        if brand is not None:
            brands = {p.brand.lower(): p.brand for p in self._shop.products}
            brand = brands.get(brand.lower(), brand)
        found = Query(
            category=category,
            brand=brand,
            max_price=a.max_price,
            min_price=a.min_price,
            in_stock=a.in_stock_only,
            order=a.order,
        ).run(pool)
        return {
            "currency": self._shop.currency,
            "found": len(found),
            "products": [_product(p) for p in found[: a.limit]],
        }, True

    async def _get_product(self, a: GetProduct) -> tuple[dict[str, Any], bool]:
        product = self._products.get(a.product_id)
        if product is None:
            return {"error": f"no product {a.product_id!r}; search first"}, False
        return {"currency": self._shop.currency, **_product(product, details=True)}, True

    async def _compare_products(self, a: CompareProducts) -> tuple[dict[str, Any], bool]:
        found = [self._products[i] for i in a.product_ids if i in self._products]
        missing = [i for i in a.product_ids if i not in self._products]
        result: dict[str, Any] = {
            "currency": self._shop.currency,
            "products": [_product(p, details=True) for p in found],
        }
        if missing:
            result["unknown_ids"] = missing
        return result, not missing

    async def _order_status(self, a: OrderStatus) -> tuple[dict[str, Any], bool]:
        ctx, number = self.context, a.order_number
        if ctx.wrong_proofs >= WRONG_PROOFS_ALLOWED:
            return _locked(), False
        self.context = ctx = ctx.but(order=number, topic="order")
        if number in ctx.owned:
            order = await self._orders.find(number)
            if order is not None:
                return self._details(order), True
        emails = (a.email,) if a.email else ()
        postcodes = (a.postcode,) if a.postcode else ()
        if not (emails or postcodes or self._verified_user):
            self.context = ctx.but(awaiting="proof")
            return _proof_needed(number), True
        order = await self._orders.find(number)
        if order is not None and owns(
            order, emails=emails, postcodes=postcodes, verified_user=self._verified_user
        ):
            self.context = ctx.but(owned=(*ctx.owned, number), awaiting=None)
            return self._details(order), True
        if not (emails or postcodes):
            self.context = ctx.but(awaiting="proof")
            return _proof_needed(number), True
        wrong = ctx.wrong_proofs + 1
        self.context = ctx.but(wrong_proofs=wrong, awaiting="proof")
        if wrong >= WRONG_PROOFS_ALLOWED:
            return _locked(), False
        # Never whether the number exists: the same answer for a wrong proof and no order.
        return {
            "order_number": number,
            "status": "proof_wrong",
            "tries_left": proofs_left(wrong),
            "say": "the e-mail address or postcode does not match this order",
        }, False

    async def _list_coupons(self, a: ListCoupons) -> tuple[dict[str, Any], bool]:
        return {
            "coupons": [
                {
                    "code": c.code,
                    "percent": c.percent,
                    "min_order": c.min_order,
                    "valid_until": c.valid_until,
                    "hu": c.hu,
                    "en": c.en,
                }
                for c in self._shop.coupons
            ]
        }, True

    async def _shop_policy(self, a: ShopPolicy) -> tuple[dict[str, Any], bool]:
        for policy in self._shop.policies:
            if policy.topic == a.topic:
                return {"topic": policy.topic, "hu": policy.hu, "en": policy.en}, True
        return {
            "error": f"no policy {a.topic!r}",
            "topics": [p.topic for p in self._shop.policies],
        }, False

    async def _handoff_to_human(self, a: HandoffToHuman) -> tuple[dict[str, Any], bool]:
        self.handoff = a.reason
        self.context = self.context.but(topic="handoff", awaiting=None)
        result: dict[str, Any] = {"status": "a colleague has been asked to take over"}
        for policy in self._shop.policies:
            if policy.topic == "contact":
                result["contact"] = {"hu": policy.hu, "en": policy.en}
        return result, True

    def _details(self, order: Order) -> dict[str, Any]:
        names = [self._products[i].name if i in self._products else i for i in order.items]
        details: dict[str, Any] = {
            "order_number": order.id,
            "status": order.status,
            "items": names,
            "total": order.total,
            "currency": self._shop.currency,
            "placed": order.placed,
        }
        for key in ("carrier", "tracking", "eta", "delivered"):
            value = getattr(order, key)
            if value:
                details[key] = value
        return details


def _product(product: Product, *, details: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": product.id,
        "name": product.name,
        "brand": product.brand,
        "category": product.category,
        "price": product.price,
        "stock": product.stock,
        "rating": product.rating,
    }
    if details and product.attributes:
        shown["attributes"] = dict(product.attributes)
    return shown


def _proof_needed(number: str) -> dict[str, Any]:
    return {
        "order_number": number,
        "status": "proof_needed",
        "say": "ask for the e-mail address or the delivery postcode given with the order",
    }


def _locked() -> dict[str, Any]:
    return {
        "status": "locked",
        "say": "for the customer's security no order details can be given in this "
        "conversation any more; refer them to customer service",
    }
