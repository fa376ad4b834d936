"""Which products a message names: full names, partial names, aliases, model numbers.

Each product is known by terms: its name without the brand ("iPhone 15 Pro")
and its aliases ("ps5", "macbook air"), as folded words, plus each term's
words run together ("ps5" from "PS 5", "wh1000xm5" from "WH-1000XM5"). A word
shared by few products names more than one shared by many ("galaxy": six).
The best-scoring product wins; products that score the same and differ only
by words the customer did not type make the answer a question ("Which one?").
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from chatbuddy.agents.shop import Product
from chatbuddy.agents.words import fold, tokens

#: A word in at most this many products names them; commoner words only help.
DISTINCTIVE = 3
#: At most this many products in a "which one?" question.
CHOICES = 5
_FOUND_LIMIT = 10_000


@dataclass(frozen=True)
class Found:
    """Products a message names: one (``product``), several to choose from, or none."""

    product: Product | None = None
    choices: tuple[Product, ...] = ()


def product_terms(product: Product) -> list[tuple[str, ...]]:
    """The product's terms as folded words, its brand left out of each."""
    brand = set(tokens(fold(product.brand)))
    terms: list[tuple[str, ...]] = []
    for text in (product.name, *product.aliases):
        words = tuple(w for w in tokens(fold(text)) if w not in brand)
        if words and words not in terms:
            terms.append(words)
        joined = "".join(words)
        if len(words) > 1 and any(c.isdigit() for c in joined) and (joined,) not in terms:
            terms.append((joined,))
    return terms


class ProductIndex:
    """Finds products by the words of a message; built once per catalogue."""

    def __init__(
        self,
        products: Sequence[Product],
        category_words: Collection[str],
        common_words: Collection[str] = (),
    ) -> None:
        # Catalogue order, kept for listing choices.
        self._products = list(products)
        # Product -> its terms.
        self._terms = {p.id: product_terms(p) for p in products}
        # Word -> ids of the products whose terms have it.
        self._postings: dict[str, set[str]] = {}
        for product_id, terms in self._terms.items():
            for term in terms:
                for word in term:
                    self._postings.setdefault(word, set()).add(product_id)
        # Words that also name a category ("watch") or are common ("mi" of "Mi Band"):
        # they do not name a product alone.
        self._category_words = {fold(w) for w in (*category_words, *common_words)}
        # Product id -> product.
        self._by_id = {p.id: p for p in products}
        # Product id -> its terms as sets, for checking a full match in one set operation.
        self._term_sets = {pid: [frozenset(t) for t in terms] for pid, terms in self._terms.items()}
        # Word -> its weight: a word shared by few products says more.
        self._weight = {w: 1.0 / len(ids) for w, ids in self._postings.items()}
        # (words, brands, among) -> what they found; bounded.
        self._found: dict[tuple[object, ...], Found] = {}
        # Product id -> its words that name it alone (rare, not a category or common word).
        self._distinctive = {
            pid: frozenset(
                w
                for term in terms
                for w in term
                if len(self._postings[w]) <= DISTINCTIVE and w not in self._category_words
            )
            for pid, terms in self._terms.items()
        }
        # Product id -> its name's words (brand left out), for telling variants apart.
        self._name_words = {p.id: set(self._terms[p.id][0]) for p in products}

    @property
    def vocabulary(self) -> Iterable[str]:
        """Every word of every product's terms."""
        return self._postings.keys()

    def joined(self, words: Sequence[str]) -> set[str]:
        """Adjacent words that form a product word when run together ("ps" "5" -> "ps5")."""
        found = set()
        for first, second in itertools.pairwise(words):
            # Only a run-together model name has a number at the seam ("ps 5", "wh 1000xm5").
            if (first[-1].isdigit() or second[0].isdigit()) and first + second in self._postings:
                found.add(first + second)
        return found

    def find(
        self,
        words: frozenset[str],
        brands: tuple[str, ...] = (),
        among: tuple[str, ...] | None = None,
    ) -> Found:
        """The product the (folded, vocabulary) ``words`` name; ``brands`` and ``among``
        (product ids) narrow it. Answers are kept (bounded): the same words recur."""
        key = (words, brands, among)
        found = self._found.get(key)
        if found is None:
            if len(self._found) >= _FOUND_LIMIT:
                self._found.clear()
            found = self._found[key] = self._find(words, brands, among)
        return found

    def _find(
        self, words: frozenset[str], brands: tuple[str, ...], among: tuple[str, ...] | None
    ) -> Found:
        hits: dict[str, set[str]] = {}
        for word in words:
            for product_id in self._postings.get(word, ()):
                hits.setdefault(product_id, set()).add(word)
        if not hits:
            return Found()
        scored: list[tuple[float, bool, Product]] = []
        vague: list[tuple[float, bool, Product]] = []
        for product_id, matched in hits.items():
            product = self._by_id[product_id]
            if (brands and product.brand not in brands) or (
                among is not None and product_id not in among
            ):
                continue
            full = any(term <= matched for term in self._term_sets[product_id])
            distinctive = not self._distinctive[product_id].isdisjoint(matched)
            score = sum(self._weight[w] for w in matched)
            if full or distinctive:
                scored.append((score, full, product))
            elif any(w not in self._category_words for w in matched):
                vague.append((score, False, product))
        if not scored:
            # Only words many products share ("galaxy"): ask which one, if few enough.
            if not vague or len(vague) > CHOICES + 1:
                return Found()
            scored = vague
        best = max(score for score, _, _ in scored)
        top = [(full, p) for score, full, p in scored if score >= best - 1e-9]
        if len(top) == 1:
            return Found(top[0][1])
        complete = [p for full, p in top if full]
        if len(complete) == 1:
            return Found(complete[0])
        order = {p.id: i for i, p in enumerate(self._products)}
        choices = sorted((p for _, p in top), key=lambda p: order[p.id])
        return Found(choices=tuple(choices[:CHOICES]))

    def variant_of(self, base: Product, words: Collection[str]) -> Product | None:
        """The product that is ``base`` plus ``words`` ("és a Pro?" after the iPhone 15)."""
        extra = {w for w in words if w in self._postings}
        if not extra:
            return None
        found = self.find(frozenset(self._name_words[base.id] | extra), (base.brand,))
        if found.product is not None and found.product.id != base.id:
            return found.product
        return None
