"""The coordinator's sub-agents: each turns a routed message into an answer.

Answers are look-ups in the demo shop, written in the customer's language.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chatbuddy.agents.language import Language
from chatbuddy.agents.routing import Decision, Route
from chatbuddy.agents.shop import Order, Product, Shop


@dataclass(frozen=True)
class Answer:
    text: str
    #: How well the message was matched: a keyword alone is a guess, a
    #: recognised product or order number is a fact.
    confidence: float
    metadata: dict[str, Any] = field(default_factory=dict)


def price(amount: int, lang: Language) -> str:
    """349990 -> "349 990 Ft" (hu) or "349,990 HUF" (en)."""
    if lang == "hu":
        return f"{amount:,} Ft".replace(",", "\u00a0")
    return f"{amount:,} HUF"


def _stock(product: Product, lang: Language) -> str:
    if product.stock == 0:
        return "jelenleg nincs készleten" if lang == "hu" else "currently out of stock"
    if lang == "hu":
        return f"készleten: {product.stock} db"
    return f"{product.stock} in stock"


def _line(product: Product, lang: Language) -> str:
    return f"• {product.name} — {price(product.price, lang)} ({_stock(product, lang)})"


def _keyword_confidence(hits: int) -> float:
    return min(0.85, 0.55 + 0.1 * hits)


def product_answer(d: Decision, tokens: list[str], lang: Language, shop: Shop) -> Answer:
    if d.products:
        p = d.products[0]
        if lang == "hu":
            text = f"A(z) {p.name} ára {price(p.price, lang)}, {_stock(p, lang)}."
        else:
            text = f"The {p.name} costs {price(p.price, lang)}; {_stock(p, lang)}."
        return Answer(text, 0.95, {"product_id": p.id})
    category = shop.find_category(tokens)
    brand = shop.find_brand(tokens)
    if category is not None or brand is not None:
        if category is not None:
            listed = shop.in_category(category.key)
            what = category.names[lang]
        else:
            assert brand is not None
            listed = shop.by_brand(brand)
            what = brand
        head = (
            f"Ezeket a(z) {what} termékeket kínáljuk:"
            if lang == "hu"
            else f"Here are our {what} products:"
        )
        lines = "\n".join(_line(p, lang) for p in listed[:6])
        return Answer(f"{head}\n{lines}", 0.8, {"listed": [p.id for p in listed[:6]]})
    names = ", ".join(c.names[lang] for c in shop.categories.values())
    if lang == "hu":
        text = (
            f"Melyik termék érdekli? Kínálatunk: {names}. Írja meg a nevét, és megmondom az árát."
        )
    else:
        text = (
            f"Which product are you interested in? We sell: {names}. "
            "Name it and I'll tell you the price."
        )
    return Answer(text, _keyword_confidence(d.hits), {})


_ORDER_STATUS = {
    "processing": {"hu": "feldolgozás alatt van", "en": "is being processed"},
    "shipped": {"hu": "úton van", "en": "has been shipped"},
    "delivered": {"hu": "kézbesítve", "en": "has been delivered"},
    "cancelled": {"hu": "törölve lett", "en": "was cancelled"},
}


def _order_text(order: Order, lang: Language) -> str:
    status = _ORDER_STATUS.get(order.status, {"hu": order.status, "en": order.status})[lang]
    if lang == "hu":
        text = f"A(z) #{order.id} számú rendelése {status}."
        if order.carrier and order.tracking:
            text += f" Futár: {order.carrier}, követési szám: {order.tracking}."
        if order.eta and order.status == "shipped":
            text += f" Várható kézbesítés: {order.eta}."
        if order.delivered:
            text += f" Kézbesítve: {order.delivered}."
        return text
    text = f"Your order #{order.id} {status}."
    if order.carrier and order.tracking:
        text += f" Carrier: {order.carrier}, tracking number: {order.tracking}."
    if order.eta and order.status == "shipped":
        text += f" Expected delivery: {order.eta}."
    if order.delivered:
        text += f" Delivered on {order.delivered}."
    return text


def order_answer(d: Decision, tokens: list[str], lang: Language, shop: Shop) -> Answer:
    if not d.orders:
        text = (
            "Kérem, adja meg a rendelésszámot (például 10042), és megnézem az állapotát."
            if lang == "hu"
            else "Please tell me your order number (for example 10042) and I'll check its status."
        )
        return Answer(text, _keyword_confidence(d.hits), {})
    number = d.orders[0]
    order = shop.orders.get(number)
    if order is None:
        text = (
            f"Nem találok #{number} számú rendelést. Kérem, ellenőrizze a rendelésszámot."
            if lang == "hu"
            else f"I can't find an order with number #{number}. Please check the number."
        )
        return Answer(text, 0.7, {"order_id": number, "found": False})
    return Answer(_order_text(order, lang), 0.95, {"order_id": number, "found": True})


def recommendation_answer(d: Decision, tokens: list[str], lang: Language, shop: Shop) -> Answer:
    if d.products:
        base = d.products[0]
        picks = shop.similar_to(base)
        head = (
            f"A(z) {base.name} helyett ezeket ajánlom:"
            if lang == "hu"
            else f"Similar to the {base.name}, I recommend:"
        )
        confidence = 0.9
    else:
        category = shop.find_category(tokens)
        picks = shop.popular(shop.in_category(category.key) if category else None)
        head = "Vásárlóink kedvencei:" if lang == "hu" else "Our customers' favourites:"
        confidence = 0.85 if category else _keyword_confidence(d.hits)
    if not picks:
        text = (
            "Sajnos most nem tudok hasonló terméket ajánlani."
            if lang == "hu"
            else "Sorry, I have nothing similar to recommend right now."
        )
        return Answer(text, 0.6, {"recommended": []})
    lines = "\n".join(_line(p, lang) for p in picks)
    return Answer(f"{head}\n{lines}", confidence, {"recommended": [p.id for p in picks]})


def marketing_answer(d: Decision, tokens: list[str], lang: Language, shop: Shop) -> Answer:
    head = "Aktuális kuponjaink:" if lang == "hu" else "Our current coupons:"
    lines = "\n".join(f"• {c.code}: {c.description[lang]}" for c in shop.coupons)
    text = f"{head}\n{lines}"
    if any(t.startswith(("hírlevél", "newsletter")) for t in tokens):
        text += (
            "\nIratkozzon fel hírlevelünkre, és a HIRLEVEL10 kóddal 10% kedvezményt kap."
            if lang == "hu"
            else "\nSubscribe to our newsletter and get 10% off with the code HIRLEVEL10."
        )
    return Answer(
        text, _keyword_confidence(d.hits) + 0.05, {"coupons": [c.code for c in shop.coupons]}
    )


_GREETINGS = ("szia", "helló", "hello", "hi", "hey", "üdv", "jó", "good")


def general_answer(d: Decision, tokens: list[str], lang: Language, shop: Shop) -> Answer:
    greeted = any(t.startswith(_GREETINGS) for t in tokens)
    if lang == "hu":
        text = (
            "Üdvözlöm! Segíthetek termékek árával és készletével, rendelése állapotával, "
            "ajánlatokkal és kuponokkal. Mit keres?"
        )
    else:
        text = (
            "Hello! I can help with product prices and stock, the status of your order, "
            "recommendations, and coupons. What are you looking for?"
        )
    return Answer(text, 0.6 if greeted else 0.3, {})


AnswerFn = Callable[[Decision, list[str], Language, Shop], Answer]

SUB_AGENTS: dict[Route, AnswerFn] = {
    Route.PRODUCT: product_answer,
    Route.ORDER: order_answer,
    Route.RECOMMENDATION: recommendation_answer,
    Route.MARKETING: marketing_answer,
    Route.GENERAL: general_answer,
}
