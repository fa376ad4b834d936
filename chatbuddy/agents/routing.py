"""The coordinator's router: which sub-agent should answer a message."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chatbuddy.agents.shop import Product, Shop, order_numbers


class Route(StrEnum):
    """The sub-agents, in the order that breaks ties."""

    MARKETING = "marketing"
    RECOMMENDATION = "recommendation"
    ORDER = "order"
    PRODUCT = "product"
    GENERAL = "general"


# Word stems, matched against the start of each word so Hungarian suffixes
# ("rendelésem", "ajánlanál", "kuponkód") still count.
KEYWORDS: dict[Route, tuple[str, ...]] = {
    Route.MARKETING: (
        "kedvezmény",
        "akció",
        "kupon",
        "hírlevél",
        "leárazás",
        "promóció",
        "engedmény",
        "discount",
        "coupon",
        "newsletter",
        "sale",
        "promo",
        "deal",
        "voucher",
    ),
    Route.RECOMMENDATION: (
        "ajánl",
        "hasonló",
        "népszerű",
        "javasol",
        "legjobb",
        "alternatív",
        "recommend",
        "similar",
        "popular",
        "suggest",
        "best",
        "alternative",
    ),
    Route.ORDER: (
        "rendelés",
        "rendelt",
        "szállít",
        "kiszállít",
        "státusz",
        "követ",
        "csomag",
        "futár",
        "order",
        "delivery",
        "deliver",
        "shipping",
        "shipped",
        "tracking",
        "track",
        "status",
        "parcel",
        "package",
    ),
    Route.PRODUCT: (
        "termék",
        "telefon",
        "ár",
        "készlet",
        "raktár",
        "márka",
        "kapható",
        "mennyibe",
        "product",
        "price",
        "stock",
        "brand",
        "cost",
        "available",
        "sell",
    ),
}


@dataclass(frozen=True)
class Decision:
    """Where a message goes and what the router found on the way."""

    route: Route
    #: Keyword hits for the chosen route.
    hits: int
    #: Products named in the message, best match first.
    products: tuple[Product, ...]
    #: Order numbers named in the message.
    orders: tuple[str, ...]


def decide(text: str, tokens: list[str], shop: Shop) -> Decision:
    """Score each route by keyword hits plus what the shop recognises in the text."""
    products = tuple(shop.find_products(tokens))
    orders = tuple(order_numbers(text))
    scores = {
        route: sum(any(t.startswith(stem) for t in tokens) for stem in stems)
        for route, stems in KEYWORDS.items()
    }
    hits = dict(scores)
    if orders:
        scores[Route.ORDER] += 2
    if products or shop.find_category(tokens) or shop.find_brand(tokens):
        scores[Route.PRODUCT] += 1
    # max() keeps the first of equal scores: KEYWORDS is in tie-break order.
    best = max(scores, key=lambda route: scores[route])
    if scores[best] == 0:
        return Decision(Route.GENERAL, 0, products, orders)
    return Decision(best, hits[best], products, orders)
