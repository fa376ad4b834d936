"""Answers about products: one product, a filtered list, a comparison, alternatives.

Facts (names, prices, stock, ratings) come from the catalogue; the sentences
around them are the templates here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatbuddy.agents import phrasing as say
from chatbuddy.agents.answer import Answer, Route
from chatbuddy.agents.context import Context
from chatbuddy.agents.shop import Catalogue, Product
from chatbuddy.agents.shopfile import Language

#: At most this many products in a list.
LIST_LENGTH = 8
#: Alternatives offered for a product.
ALTERNATIVES = 3


@dataclass(frozen=True)
class Query:
    """A filtered, ordered look at the catalogue."""

    category: str | None = None
    brand: str | None = None
    max_price: int | None = None
    min_price: int | None = None
    in_stock: bool = False
    #: "price" (cheapest first), "-price" (dearest first), "rating" (best first), or None.
    order: str | None = None
    #: Leave this product out (alternatives to it).
    exclude: str | None = None
    #: Only the first one ("the cheapest").
    top: bool = False

    def run(self, products: Sequence[Product]) -> list[Product]:
        found = [
            p
            for p in products
            if (self.category is None or p.category == self.category)
            and (self.brand is None or p.brand == self.brand)
            and (self.max_price is None or p.price <= self.max_price)
            and (self.min_price is None or p.price >= self.min_price)
            and (not self.in_stock or p.stock > 0)
            and p.id != self.exclude
        ]
        if self.order == "price":
            found.sort(key=lambda p: p.price)
        elif self.order == "-price":
            found.sort(key=lambda p: -p.price)
        elif self.order == "rating":
            found.sort(key=lambda p: (p.stock == 0, -p.rating))
        return found


def one_product(
    shop: Catalogue,
    product: Product,
    lang: Language,
    ctx: Context,
    *,
    quantity: int | None = None,
    stock_first: bool = False,
) -> Answer:
    """Price and stock of one product (stock first when that is what was asked)."""
    cost = say.price(product.price, lang, shop.currency)
    stock = say.stock(product, lang)
    if stock_first and product.stock > 0:
        if lang == "hu":
            text = (
                f"Igen, {say.article(product.name)} {product.name} készleten van "
                f"({product.stock} db), ára {cost}."
            )
        else:
            text = f"Yes, the {product.name} is available: {stock}, {cost} each."
    elif lang == "hu":
        text = f"{say.the(product.name)} ára {cost}, {stock}."
    else:
        text = f"The {product.name} costs {cost}; {stock}."
    if quantity and quantity > 1:
        total = say.price(product.price * quantity, lang, shop.currency)
        text += f" {quantity} db: {total}." if lang == "hu" else f" {quantity} of them: {total}."
        if 0 < product.stock < quantity:
            text += (
                f" Most csak {product.stock} db van raktáron."
                if lang == "hu"
                else f" Only {product.stock} are in stock now."
            )
    after = ctx.but(
        product=product.id, category=product.category, awaiting=None, choices=(), topic="product"
    )
    return Answer(text, Route.PRODUCT, 0.95, after, {"product_id": product.id})


def which_one(choices: Sequence[Product], lang: Language, ctx: Context) -> Answer:
    """A question: which of these products did the customer mean?"""
    names = say.choice([p.name for p in choices], lang)
    text = f"Melyikre gondol: {names}?" if lang == "hu" else f"Which one do you mean: {names}?"
    after = ctx.but(awaiting="choice", choices=tuple(p.id for p in choices), topic="product")
    return Answer(text, Route.PRODUCT, 0.7, after, {"choices": [p.id for p in choices]})


def product_list(shop: Catalogue, query: Query, lang: Language, ctx: Context) -> Answer:
    """The products a query finds; when none, says so and offers the nearest."""
    found = query.run(shop.products)
    what = _what(shop, query, lang)
    after = ctx.but(
        category=query.category or ctx.category, brand=query.brand, awaiting=None, choices=()
    )
    if not found:
        return _none_found(shop, query, what, lang, after)
    if len(found) == 1 and query.order is None:
        return one_product(shop, found[0], lang, after)
    if query.top and query.order in ("price", "-price"):
        best = found[0]
        adjective = _superlative_word(query.order, lang)
        cost = say.price(best.price, lang, shop.currency)
        if lang == "hu":
            text = f"{say.the(adjective)} {what}: {best.name}, {cost} ({say.stock(best, lang)})."
        else:
            text = f"The {adjective} {what}: the {best.name}, {cost} ({say.stock(best, lang)})."
        after = after.but(product=best.id, category=best.category, topic="product")
        return Answer(text, Route.PRODUCT, 0.9, after, {"product_id": best.id})
    shown = found[:LIST_LENGTH]
    head = f"{_limits(shop, query, lang)}" if (query.max_price or query.min_price) else ""
    if lang == "hu":
        text = f"Ezeket ajánlhatom ({what}{head}):"
    else:
        text = f"Here is what we have ({what}{head}):"
    text += "\n" + say.listing(shown, lang, shop.currency)
    after = after.but(product=shown[0].id if len(shown) == 1 else ctx.product, topic="product")
    return Answer(text, Route.PRODUCT, 0.85, after, {"listed": [p.id for p in shown]})


def compare(shop: Catalogue, products: Sequence[Product], lang: Language, ctx: Context) -> Answer:
    """Products side by side: price, stock, rating, and which is rated higher."""
    rows = []
    for p in products:
        cost = say.price(p.price, lang, shop.currency)
        stars = say.rating(p.rating, lang)
        if lang == "hu":
            rows.append(f"• {p.name}: {cost}, {say.stock(p, lang)}, értékelés: {stars}/5")
        else:
            rows.append(f"• {p.name}: {cost}, {say.stock(p, lang)}, rated {stars}/5")
    best = max(products, key=lambda p: p.rating)
    cheapest = min(products, key=lambda p: p.price)
    if lang == "hu":
        verdict = f"Vásárlóink {say.article(best.name)} {best.name} típust értékelték jobbra"
        verdict += (
            "." if best is cheapest else f", {say.article(cheapest.name)} {cheapest.name} olcsóbb."
        )
        text = "Összehasonlítva:\n" + "\n".join(rows) + "\n" + verdict
    else:
        verdict = f"Customers rate the {best.name} higher"
        verdict += "." if best is cheapest else f"; the {cheapest.name} costs less."
        text = "Side by side:\n" + "\n".join(rows) + "\n" + verdict
    after = ctx.but(product=best.id, category=best.category, awaiting=None, topic="product")
    return Answer(text, Route.PRODUCT, 0.9, after, {"compared": [p.id for p in products]})


def alternatives(
    shop: Catalogue, base: Product, lang: Language, ctx: Context, *, cheaper: bool = False
) -> Answer:
    """In-stock products of the same category, nearest in price (or cheaper only)."""
    query = Query(
        category=base.category,
        in_stock=True,
        exclude=base.id,
        max_price=base.price - 1 if cheaper else None,
    )
    picks = sorted(query.run(shop.products), key=lambda p: abs(p.price - base.price))
    picks = picks[:ALTERNATIVES]
    after = ctx.but(product=base.id, category=base.category, awaiting=None, topic="recommendation")
    instead = f"{say.article(base.name)} {base.name} helyett"
    if not picks:
        if lang == "hu":
            kind = "olcsóbb" if cheaper else "hasonló"
            text = f"Sajnos nincs {kind} termékünk készleten {instead}."
        else:
            kind = "cheaper" if cheaper else "similar"
            text = f"Sorry, we have nothing {kind} to the {base.name} in stock."
        return Answer(text, Route.RECOMMENDATION, 0.6, after, {"recommended": []})
    if lang == "hu":
        head = (
            f"Olcsóbb választás {instead}:"
            if cheaper
            else f"{say.the(base.name)} helyett ezeket ajánlom:"
        )
    else:
        head = f"{'Cheaper than' if cheaper else 'Similar to'} the {base.name}, I recommend:"
    text = head + "\n" + say.listing(picks, lang, shop.currency)
    return Answer(text, Route.RECOMMENDATION, 0.9, after, {"recommended": [p.id for p in picks]})


def favourites(shop: Catalogue, query: Query, lang: Language, ctx: Context) -> Answer:
    """The best-rated products in stock (of a category, brand or budget)."""
    found = Query(
        category=query.category,
        brand=query.brand,
        max_price=query.max_price,
        min_price=query.min_price,
        in_stock=True,
        order=query.order if query.order in ("price", "-price") else "rating",
    ).run(shop.products)[:ALTERNATIVES]
    after = ctx.but(category=query.category or ctx.category, awaiting=None, topic="recommendation")
    if not found:
        return _none_found(shop, query, _what(shop, query, lang), lang, after)
    head = "Ezeket ajánlom:" if lang == "hu" else "I recommend these:"
    text = head + "\n" + say.listing(found, lang, shop.currency)
    if len(found) == 1:
        after = after.but(product=found[0].id)
    return Answer(text, Route.RECOMMENDATION, 0.85, after, {"recommended": [p.id for p in found]})


def _none_found(shop: Catalogue, query: Query, what: str, lang: Language, ctx: Context) -> Answer:
    nearest = Query(category=query.category, brand=query.brand, order="price").run(shop.products)
    limits = _limits(shop, query, lang)
    if lang == "hu":
        text = f"Sajnos nincs ilyen termékünk ({what}{limits})."
    else:
        text = f"Sorry, we have nothing like that ({what}{limits})."
    if nearest and query.max_price is not None:
        p = nearest[0]
        cost = say.price(p.price, lang, shop.currency)
        text += (
            f" A legolcsóbb: {p.name}, {cost} ({say.stock(p, lang)})."
            if lang == "hu"
            else f" The cheapest is the {p.name}, {cost} ({say.stock(p, lang)})."
        )
    return Answer(text, Route.PRODUCT, 0.75, ctx.but(topic="product"), {"listed": []})


def _what(shop: Catalogue, query: Query, lang: Language) -> str:
    parts = []
    if query.brand:
        parts.append(query.brand)
    if query.category and query.category in shop.categories:
        parts.append(shop.categories[query.category].name(lang))
    if not parts:
        parts.append("termék" if lang == "hu" else "products")
    return " ".join(parts)


def _limits(shop: Catalogue, query: Query, lang: Language) -> str:
    text = ""
    if query.max_price is not None:
        cost = say.price(query.max_price, lang, shop.currency)
        text += f", {cost} alatt" if lang == "hu" else f", under {cost}"
    if query.min_price is not None:
        cost = say.price(query.min_price, lang, shop.currency)
        text += f", {cost} felett" if lang == "hu" else f", over {cost}"
    return text


def _superlative_word(order: str | None, lang: Language) -> str:
    if lang == "hu":
        return "legolcsóbb" if order == "price" else "legdrágább"
    return "cheapest" if order == "price" else "most expensive"
