"""Deciding what to answer: the message as read, with the conversation so far.

The checks run from the most specific to the most general: a request for a
person, an order in progress, a policy question, coupons, a comparison, a
product (named, a variant of the one talked about, or a list by category,
brand and budget), a follow-up on the product talked about, courtesies, and
last a short note of what the assistant can do.
"""

from __future__ import annotations

from chatbuddy.agents import product_answers as products
from chatbuddy.agents import talk_answers as talk
from chatbuddy.agents.answer import Answer
from chatbuddy.agents.context import Context
from chatbuddy.agents.intents import Intent
from chatbuddy.agents.order_answers import OrderQuestion, answer_order
from chatbuddy.agents.product_answers import Query
from chatbuddy.agents.shop import Catalogue, OrderBackend, Product
from chatbuddy.agents.shopfile import Language
from chatbuddy.agents.understanding import Reader, Reading


class Planner:
    """Answers one message of a conversation from one shop."""

    def __init__(self, catalogue: Catalogue, orders: OrderBackend) -> None:
        # What the shop sells and says.
        self.shop = catalogue
        # Where orders are looked up.
        self.orders = orders
        # Reads messages against the shop's vocabulary (built once, here).
        self.reader = Reader(catalogue)
        # Policy topic -> the shop's text for it.
        self._policies = {p.topic: p for p in catalogue.policies}
        # Product id -> product.
        self._products = {p.id: p for p in catalogue.products}

    def contact(self, lang: Language) -> str | None:
        """The shop's contact text, if it has one."""
        policy = self._policies.get("contact")
        return None if policy is None else (policy.hu if lang == "hu" else policy.en)

    def language(self, reading: Reading, ctx: Context) -> Language:
        """The message's language, else the conversation's, else the shop's."""
        if reading.has(Intent.ENGLISH) and not reading.has(Intent.HUNGARIAN):
            return "en"
        if reading.has(Intent.HUNGARIAN) and not reading.has(Intent.ENGLISH):
            return "hu"
        return reading.language or ctx.language or self.shop.language

    async def answer(self, r: Reading, ctx: Context, verified_user: str | None) -> Answer:
        lang = self.language(r, ctx)
        ctx = ctx.but(language=lang)
        if r.has(Intent.HUMAN):
            return talk.handoff(lang, ctx, self.contact(lang))
        question = self._order_question(r, ctx)
        if question is not None:
            return await answer_order(
                question,
                shop=self.shop,
                orders=self.orders,
                lang=lang,
                ctx=ctx,
                verified_user=verified_user,
                contact=self.contact(lang),
            )
        found = self._product(r, ctx)
        if r.topics and (found is None or not r.has(Intent.PRICE, Intent.STOCK)):
            return talk.policies([self._policies[t] for t in r.topics], lang, ctx)
        if r.has(Intent.MARKETING) or (r.has(Intent.VALIDITY) and ctx.topic == "marketing"):
            return talk.coupons(self.shop, lang, ctx)
        if len(r.each) >= 2:
            return products.compare(self.shop, r.each, lang, ctx)
        return self._about_products(r, ctx, lang, found) or self._small_talk(r, ctx, lang)

    def _order_question(self, r: Reading, ctx: Context) -> OrderQuestion | None:
        """An order question, with its number and proofs; None when this is not one."""
        n = r.numbers
        awaiting_proof = ctx.awaiting == "proof" and ctx.order is not None
        postcodes = tuple(o for o in n.order_numbers if len(o) == 4)
        longer = tuple(o for o in n.order_numbers if len(o) > 4)
        if awaiting_proof and (n.emails or postcodes) and not longer:
            return OrderQuestion(ctx.order, n.emails, postcodes)
        number = (longer or n.order_numbers or (None,))[0]
        named = r.found.product is not None or bool(r.categories)
        if number is not None and (
            r.has(Intent.ORDER)
            or n.marked
            or ctx.awaiting in ("order_number", "proof")
            or (not named and not r.intents and len(number) > 4)
        ):
            return OrderQuestion(number, n.emails, postcodes if number not in postcodes else ())
        if n.emails and ctx.order is not None:
            return OrderQuestion(ctx.order, n.emails, ())
        if r.has(Intent.ORDER) and (not r.topics or r.has(Intent.TRACK)) and not named:
            return OrderQuestion(ctx.order if ctx.topic == "order" else None)
        if ctx.topic == "order" and ctx.order and r.has(Intent.WHEN, Intent.ORDER):
            return OrderQuestion(ctx.order)
        return None

    def _product(self, r: Reading, ctx: Context) -> Product | None:
        """The one product the message is about, if it names one (or a variant, or a choice)."""
        if ctx.awaiting == "choice" and ctx.choices and r.product_words:
            among = self.reader.products.find(r.product_words, (), ctx.choices)
            if among.product is not None:
                return among.product
        if r.found.product is not None:
            base = self._products.get(ctx.product or "")
            if base is not None and r.has(Intent.VARIANT) and r.found.product.id == base.id:
                return base
            return r.found.product
        base = self._products.get(ctx.product or "")
        if base is not None and r.product_words:
            return self.reader.products.variant_of(base, r.product_words)
        return None

    def _about_products(
        self, r: Reading, ctx: Context, lang: Language, found: Product | None
    ) -> Answer | None:
        current = self._products.get(ctx.product or "")
        wants_other = r.has(Intent.SIMILAR) or (r.has(Intent.RECOMMEND) and not r.categories)
        if found is not None:
            if wants_other or r.has(Intent.CHEAPER):
                return products.alternatives(
                    self.shop, found, lang, ctx, cheaper=r.has(Intent.CHEAPER)
                )
            quantity = max(r.numbers.quantities, default=None)
            stock_first = r.has(Intent.STOCK) and not r.has(Intent.PRICE)
            return products.one_product(
                self.shop, found, lang, ctx, quantity=quantity, stock_first=stock_first
            )
        if r.found.choices:
            return products.which_one(r.found.choices, lang, ctx)
        if current is not None and r.has(Intent.CHEAPER) and not (r.categories or r.brands):
            return products.alternatives(self.shop, current, lang, ctx, cheaper=True)
        query = self._query(r, ctx)
        if current is not None and query is None:
            if wants_other or r.has(Intent.CHEAPER):
                return products.alternatives(
                    self.shop, current, lang, ctx, cheaper=r.has(Intent.CHEAPER)
                )
            if r.has(Intent.PRICE, Intent.STOCK, Intent.ENGLISH, Intent.HUNGARIAN):
                stock_first = r.has(Intent.STOCK) and not r.has(Intent.PRICE)
                return products.one_product(self.shop, current, lang, ctx, stock_first=stock_first)
        if query is None:
            if r.has(Intent.RECOMMEND, Intent.SIMILAR):
                return products.favourites(self.shop, Query(), lang, ctx)
            return None
        if r.has(Intent.RECOMMEND, Intent.SIMILAR) and not query.top:
            return products.favourites(self.shop, query, lang, ctx)
        return products.product_list(self.shop, query, lang, ctx)

    def _query(self, r: Reading, ctx: Context) -> Query | None:
        """A catalogue query from the message (and the category talked about); None if none."""
        n = r.numbers
        order = None
        top = False
        if r.has(Intent.CHEAPEST):
            order, top = "price", True
        elif r.has(Intent.PRICIEST):
            order, top = "-price", True
        elif r.has(Intent.CHEAP, Intent.CHEAPER):
            order = "price"
        elif r.has(Intent.EXPENSIVE):
            order = "-price"
        filtered = n.max_price is not None or n.min_price is not None or order is not None
        category = r.categories[0] if r.categories else None
        brand = r.brands[0] if r.brands else None
        if category is None and brand is None:
            if not filtered:
                return None
            category = ctx.category
        in_stock = r.has(Intent.ONLY) and r.has(Intent.STOCK)
        return Query(
            category=category,
            brand=brand,
            max_price=n.max_price,
            min_price=n.min_price,
            in_stock=in_stock,
            order=order,
            top=top,
        )

    def _small_talk(self, r: Reading, ctx: Context, lang: Language) -> Answer:
        thanks, bye = r.has(Intent.THANKS), r.has(Intent.BYE)
        if thanks or bye:
            return talk.courtesy(thanks=thanks, bye=bye, lang=lang, ctx=ctx)
        return talk.greeting(self.shop, lang, ctx, greeted=r.has(Intent.GREETING))
