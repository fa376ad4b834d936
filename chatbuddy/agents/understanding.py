"""Reading one message: what it asks, what it names, which numbers mean what, its language.

:class:`Reader` is built once per catalogue: one vocabulary of intent words
(:mod:`chatbuddy.agents.intents`), category and policy keywords, brands and
product words, each word tagged with the language it belongs to. Reading a
message is then a few dict look-ups per word (:class:`chatbuddy.agents.words.Lexicon`
caches each word's meaning), plus the product index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatbuddy.agents.intents import INTENT_WORDS, PHRASES, STOP_WORDS, Intent
from chatbuddy.agents.numbers import Numbers, read_numbers
from chatbuddy.agents.products import Found, ProductIndex
from chatbuddy.agents.shop import Catalogue, Product
from chatbuddy.agents.shopfile import Language
from chatbuddy.agents.words import Lexicon, fold, has_accents, tokens

_EMAIL_RE = re.compile(r"\S+@\S+")
_DIGIT_RE = re.compile(r"\d")
_SEGMENT_RE = re.compile(r"\b(?:vagy|or|vs|versus|es|and|illetve)\b|[,/;]")

Concept = tuple[str, str]  # (kind, value): ("intent", "price"), ("category", "phone"), ...


_SENSES_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class _Sense:
    """One word as typed: the vocabulary words it is a form of, what they mean, its language."""

    means: frozenset[str]
    concepts: frozenset[Concept]
    #: The one language its vocabulary words (or accents) belong to, else None.
    language: str | None
    #: How much it says about the language (accents say most).
    weight: int


@dataclass(frozen=True)
class Reading:
    """What one message says, as far as the shop's vocabulary tells."""

    text: str
    intents: frozenset[Intent] = frozenset()
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    found: Found = field(default_factory=Found)
    #: Distinct products named in separate parts ("the S24 or the iPhone 15").
    each: tuple[Product, ...] = ()
    numbers: Numbers = field(default_factory=Numbers)
    #: The message's language; None when it does not show (a number, a name).
    language: Language | None = None
    #: Product words in the message, for variants ("and the Pro?").
    product_words: frozenset[str] = frozenset()
    #: Words that meant nothing to the shop.
    unknown: int = 0

    def has(self, *intents: Intent) -> bool:
        return not self.intents.isdisjoint(intents)


class Reader:
    """Reads messages against one catalogue's vocabulary."""

    def __init__(self, catalogue: Catalogue) -> None:
        concepts: dict[str, set[Concept]] = {}
        phrases: list[tuple[tuple[str, ...], Concept]] = []
        tags: dict[str, set[str]] = {}

        def add(text: str, concept: Concept | None, lang: str | None) -> None:
            words = tuple(tokens(fold(text)))
            for word in words:
                concepts.setdefault(word, set())
                if lang:
                    tags.setdefault(word, set()).add(lang)
            if concept is None or not words:
                return
            if len(words) == 1:
                concepts[words[0]].add(concept)
            else:
                phrases.append((words, concept))

        for intent, (hungarian, english) in INTENT_WORDS.items():
            for lang, words in (("hu", hungarian), ("en", english)):
                for word in words.split():
                    add(word, ("intent", intent.value), lang)
        for phrase, intent in PHRASES.items():
            add(phrase, ("intent", intent.value), None)
        for lang, words in (("hu", STOP_WORDS[0]), ("en", STOP_WORDS[1])):
            for word in words.split():
                add(word, None, lang)
        for key, category in catalogue.categories.items():
            add(category.hu, ("category", key), "hu" if category.hu != category.en else None)
            add(category.en, ("category", key), "en" if category.hu != category.en else None)
            for lang, keywords in (("hu", category.keywords.hu), ("en", category.keywords.en)):
                for keyword in keywords:
                    add(keyword, ("category", key), lang)
        for policy in catalogue.policies:
            for lang, keywords in (("hu", policy.keywords.hu), ("en", policy.keywords.en)):
                for keyword in keywords:
                    add(keyword, ("policy", policy.topic), lang)
        self._brands = {fold(p.brand): p.brand for p in catalogue.products}
        for folded in self._brands:
            add(folded, ("brand", folded), None)
        category_words = [w for w, c in concepts.items() if any(k == "category" for k, _ in c)]
        # Finds products by their words.
        common = (STOP_WORDS[0] + " " + STOP_WORDS[1]).split()
        self.products = ProductIndex(catalogue.products, category_words, [fold(w) for w in common])
        for word in self.products.vocabulary:
            concepts.setdefault(word, set())
        # Vocabulary word -> what it means (intents, categories, topics, brands).
        self._concepts = concepts
        # Multi-word keywords by their first word: all their words must occur.
        self._phrases: dict[str, list[tuple[tuple[str, ...], Concept]]] = {}
        for sequence, concept in phrases:
            self._phrases.setdefault(sequence[0], []).append((sequence, concept))
        # Word as typed -> what it means here; bounded, so odd input cannot grow it forever.
        self._senses: dict[str, _Sense] = {}
        # Vocabulary word -> its language, when it has only one.
        self._language = {w: next(iter(t)) for w, t in tags.items() if len(t) == 1}
        # Every word customers may type, matched with stems, prefixes and typo tolerance.
        self._lexicon = Lexicon(concepts, fuzzy_exclude=common)
        # Product words, to tell them from the rest of the vocabulary.
        self._product_words = frozenset(self.products.vocabulary)

    def read(self, text: str) -> Reading:
        """What ``text`` says."""
        folded = fold(text)
        words = tokens(_EMAIL_RE.sub(" ", text)) if "@" in text else tokens(text)
        meant: set[str] = set()
        concepts: set[Concept] = set()
        hungarian = english = unknown = 0
        for raw in words:
            sense = self._senses.get(raw)
            if sense is None:
                sense = self._sense(raw)
            if sense.language == "hu":
                hungarian += sense.weight
            elif sense.language == "en":
                english += sense.weight
            if not sense.means:
                unknown += 1
                continue
            meant |= sense.means
            concepts |= sense.concepts
        if len(words) > 1 and _DIGIT_RE.search(text):
            joined = self.products.joined([fold(w) for w in words])
            if joined:
                meant |= joined
        for m in meant:
            for phrase, concept in self._phrases.get(m, ()):
                if all(w in meant for w in phrase):
                    concepts.add(concept)
        brands = tuple(sorted(self._brands[v] for k, v in concepts if k == "brand"))
        product_words = frozenset(meant & self._product_words)
        found = self.products.find(product_words, brands) if product_words else Found()
        if product_words and found.product is None and not found.choices and brands:
            found = self.products.find(product_words)
        intents = frozenset(Intent(v) for k, v in concepts if k == "intent")
        each: tuple[Product, ...] = ()
        if Intent.COMPARE in intents and product_words:
            each = self._each(folded)
        language: Language | None = None
        if hungarian > english:
            language = "hu"
        elif english > hungarian:
            language = "en"
        return Reading(
            text=text,
            intents=intents,
            categories=tuple(sorted(v for k, v in concepts if k == "category")),
            brands=brands,
            topics=tuple(sorted(v for k, v in concepts if k == "policy")),
            found=found,
            each=each,
            numbers=read_numbers(folded),
            language=language,
            product_words=product_words,
            unknown=unknown,
        )

    def _sense(self, raw: str) -> _Sense:
        """What one word means here, worked out once and kept (bounded)."""
        word = self._lexicon.word(raw)
        concepts: set[Concept] = set()
        for m in word.means:
            concepts |= self._concepts.get(m, set())
        langs = {self._language.get(m) for m in word.means} - {None}
        weight = 1 if len(langs) == 1 else 0
        language = langs.pop() if len(langs) == 1 else None
        if has_accents(raw):
            language, weight = "hu", weight + 2
        sense = _Sense(word.means, frozenset(concepts), language, weight)
        if len(self._senses) >= _SENSES_LIMIT:
            self._senses.clear()
        self._senses[raw] = sense
        return sense

    def _each(self, folded: str) -> tuple[Product, ...]:
        """The products named in each part of a comparison, in order, once each."""
        named: list[Product] = []
        for part in _SEGMENT_RE.split(folded):
            words = tokens(part)
            meant: set[str] = set()
            for raw in words:
                meant |= self._lexicon.word(raw).means
            meant |= self.products.joined(words)
            brands = tuple(sorted(self._brands[m] for m in meant if m in self._brands))
            found = self.products.find(frozenset(meant & self._product_words), brands)
            if found.product is not None and found.product not in named:
                named.append(found.product)
        return tuple(named)
