"""The rest of a shop conversation: policies, coupons, greetings, thanks, a human.

Policy and coupon texts are the shop's own (the shop file); only the short
courtesies around them are templates here.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatbuddy.agents import phrasing as say
from chatbuddy.agents.answer import Answer, Route
from chatbuddy.agents.context import Context
from chatbuddy.agents.shop import Catalogue, Policy
from chatbuddy.agents.shopfile import Language

#: The hand-off reason when the customer asks for a person.
CUSTOMER_ASKED = "customer_asked"


def policies(found: Sequence[Policy], lang: Language, ctx: Context) -> Answer:
    """The shop's texts for the topics asked about (at most two)."""
    texts = [p.hu if lang == "hu" else p.en for p in found[:2]]
    topic = f"policy:{found[0].topic}"
    return Answer(
        " ".join(texts),
        Route.GENERAL,
        0.85,
        ctx.but(topic=topic, awaiting=None),
        {"topics": [p.topic for p in found[:2]]},
    )


def coupons(shop: Catalogue, lang: Language, ctx: Context) -> Answer:
    """Every coupon on offer, with what it gives and until when."""
    if not shop.coupons:
        text = "Jelenleg nincs kuponunk." if lang == "hu" else "We have no coupons at the moment."
        return Answer(text, Route.MARKETING, 0.7, ctx.but(topic="marketing"))
    lines = []
    for c in shop.coupons:
        until = say.date(c.valid_until, lang)
        description = c.hu if lang == "hu" else c.en
        lines.append(
            f"• {c.code}: {description} (érvényes: {until})"
            if lang == "hu"
            else f"• {c.code}: {description} (valid until {until})"
        )
    head = "Aktuális kuponjaink:" if lang == "hu" else "Our current coupons:"
    return Answer(
        head + "\n" + "\n".join(lines),
        Route.MARKETING,
        0.85,
        ctx.but(topic="marketing", awaiting=None),
        {"coupons": [c.code for c in shop.coupons]},
    )


def handoff(lang: Language, ctx: Context, contact: str | None) -> Answer:
    """Acknowledge; the reply asks the admin side for a person (AgentReply.handoff)."""
    if lang == "hu":
        text = "Rendben, szóltam: egy kolléga hamarosan átveszi a beszélgetést."
        if contact:
            text += " Addig is így ér el minket: " + contact
    else:
        text = "Of course: I've asked a colleague to take over this conversation shortly."
        if contact:
            text += " In the meantime, you can reach us like this: " + contact
    return Answer(
        text, Route.GENERAL, 0.9, ctx.but(topic="handoff", awaiting=None), handoff=CUSTOMER_ASKED
    )


def courtesy(*, thanks: bool, bye: bool, lang: Language, ctx: Context) -> Answer:
    """ "Szívesen!", "Viszontlátásra!" and the like."""
    parts = []
    if thanks:
        parts.append("Szívesen!" if lang == "hu" else "You're welcome!")
    if bye:
        parts.append(
            "Viszontlátásra, további szép napot!" if lang == "hu" else "Goodbye, have a nice day!"
        )
    if not bye:
        parts.append(
            "Ha más kérdése is van, írjon bátran."
            if lang == "hu"
            else "If there's anything else, just ask."
        )
    return Answer(" ".join(parts), Route.GENERAL, 0.9, ctx.but(awaiting=None, topic="general"))


def greeting(shop: Catalogue, lang: Language, ctx: Context, *, greeted: bool) -> Answer:
    """What the assistant can do; a greeting when the customer greeted."""
    categories = ", ".join(c.name(lang) for c in shop.categories.values())
    if lang == "hu":
        text = (
            f"Üdvözlöm {say.article(shop.name)} {shop.name} oldalán! Segíthetek termékek árával, "
            f"készletével és összehasonlításával ({categories}), rendelése állapotával, "
            "szállítással, visszaküldéssel és kuponokkal. Miben segíthetek?"
        )
    else:
        text = (
            f"Hello, welcome to {shop.name}! I can help with product prices, stock and "
            f"comparisons ({categories}), the status of your order, delivery, returns and "
            "coupons. What are you looking for?"
        )
    return Answer(
        text, Route.GENERAL, 0.6 if greeted else 0.3, ctx.but(topic="general", awaiting=None)
    )
