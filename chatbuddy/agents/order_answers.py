"""Answers about orders, in two steps: the number, then a proof of ownership.

The rule is :mod:`chatbuddy.agents.ownership`'s. Until the proof matches, a
reply says nothing about the order, not even whether the number exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatbuddy.agents import phrasing as say
from chatbuddy.agents.answer import Answer, Route
from chatbuddy.agents.context import Context
from chatbuddy.agents.ownership import WRONG_PROOFS_ALLOWED, owns, proofs_left
from chatbuddy.agents.shop import Catalogue, Order, OrderBackend
from chatbuddy.agents.shopfile import Language

_STATUS = {
    "processing": {"hu": "feldolgozás alatt van", "en": "is being processed"},
    "shipped": {"hu": "úton van", "en": "has been shipped"},
    "delivered": {"hu": "kézbesítve", "en": "has been delivered"},
    "cancelled": {"hu": "törölve lett", "en": "was cancelled"},
}


@dataclass(frozen=True)
class OrderQuestion:
    """What a message says about an order."""

    #: The order number named now, or the one the conversation is about.
    number: str | None
    emails: tuple[str, ...] = ()
    postcodes: tuple[str, ...] = ()


async def answer_order(
    question: OrderQuestion,
    *,
    shop: Catalogue,
    orders: OrderBackend,
    lang: Language,
    ctx: Context,
    verified_user: str | None,
    contact: str | None,
) -> Answer:
    """Details for an owned order; otherwise ask for the number or a proof, or refuse."""
    number = question.number
    if ctx.wrong_proofs >= WRONG_PROOFS_ALLOWED:
        return _locked(lang, ctx, contact)
    if number is None:
        text = (
            "Kérem, írja meg a rendelésszámot (például 10042), és megnézem, hol tart."
            if lang == "hu"
            else "Please tell me your order number (for example 10042) and I'll check on it."
        )
        return Answer(text, Route.ORDER, 0.6, ctx.but(awaiting="order_number", topic="order"))
    after = ctx.but(order=number, topic="order", awaiting=None)
    if number in ctx.owned:
        order = await orders.find(number)
        if order is not None:
            return _details(shop, order, lang, after)
    order = None
    if verified_user is not None or question.emails or question.postcodes:
        order = await orders.find(number)
    proven = owns(
        order,
        emails=question.emails,
        postcodes=question.postcodes,
        verified_user=verified_user,
    )
    if proven and order is not None:
        return _details(shop, order, lang, after.but(owned=(*ctx.owned, number)))
    if not (question.emails or question.postcodes):
        return _ask_proof(number, lang, after.but(awaiting="proof"))
    wrong = ctx.wrong_proofs + 1
    after = after.but(wrong_proofs=wrong, awaiting="proof")
    if wrong >= WRONG_PROOFS_ALLOWED:
        return _locked(lang, after, contact, just_now=True)
    left = proofs_left(wrong)
    if lang == "hu":
        text = (
            f"Ez az adat nem egyezik {say.article(number)} #{number} számú rendelés adataival. "
            f"Kérem, ellenőrizze a rendeléshez megadott e-mail-címet vagy irányítószámot "
            f"(még {left} próbálkozás maradt)."
        )
    else:
        text = (
            f"That does not match order #{number}. Please check the e-mail address or "
            f"postcode you gave with the order ({left} tries left)."
        )
    return Answer(text, Route.ORDER, 0.8, after, {"order_id": number, "proof": "wrong"})


def _ask_proof(number: str, lang: Language, ctx: Context) -> Answer:
    if lang == "hu":
        text = (
            f"{say.the('#' + number)} számú rendelés adatait csak a rendelés gazdájának mondhatom "
            "el: kérem, írja meg a rendeléshez megadott e-mail-címet vagy a szállítási "
            "irányítószámot."
        )
    else:
        text = (
            f"I can only share the details of order #{number} with its owner: please tell me "
            "the e-mail address or the delivery postcode given with the order."
        )
    return Answer(text, Route.ORDER, 0.8, ctx, {"order_id": number, "proof": "asked"})


def _locked(lang: Language, ctx: Context, contact: str | None, *, just_now: bool = False) -> Answer:
    if lang == "hu":
        text = ("Ez az adat sem egyezik. " if just_now else "") + (
            "Biztonsági okból ebben a beszélgetésben már nem adhatok ki rendelési adatokat; "
            "kérem, forduljon ügyfélszolgálatunkhoz."
        )
    else:
        text = ("That does not match either. " if just_now else "") + (
            "For your security I can no longer give order details in this conversation; "
            "please contact customer service."
        )
    if contact:
        text += " " + contact
    return Answer(
        text, Route.ORDER, 0.8, ctx.but(awaiting=None, topic="order"), {"proof": "locked"}
    )


def _details(shop: Catalogue, order: Order, lang: Language, ctx: Context) -> Answer:
    status = _STATUS[order.status][lang]
    names = [p.name for p in shop.products if p.id in order.items] or list(order.items)
    if lang == "hu":
        text = f"{say.the('#' + order.id)} számú rendelése ({', '.join(names)}) {status}."
        if order.carrier and order.tracking:
            text += f" Futár: {order.carrier}, követési szám: {order.tracking}."
        if order.eta and order.status == "shipped":
            text += f" Várható kézbesítés: {say.date(order.eta, lang)}"
        if order.delivered:
            text += f" Kézbesítve: {say.date(order.delivered, lang)}"
    else:
        text = f"Your order #{order.id} ({', '.join(names)}) {status}."
        if order.carrier and order.tracking:
            text += f" Carrier: {order.carrier}, tracking number: {order.tracking}."
        if order.eta and order.status == "shipped":
            text += f" Expected delivery: {say.date(order.eta, lang)}."
        if order.delivered:
            text += f" Delivered on {say.date(order.delivered, lang)}."
    return Answer(
        text, Route.ORDER, 0.95, ctx.but(awaiting=None), {"order_id": order.id, "found": True}
    )
