"""Words as customers type them: split, folded, stemmed, matched to what the shop knows.

A word is matched to a vocabulary word (a keyword, a product's name word, an
intent word) in three steps, cheapest first: equal stems (PyStemmer's
Hungarian and English Snowball stemmers, accents folded); a stem or word that
starts with a vocabulary word of 4+ letters (suffixes and compounds:
"kuponkód", "okosórákat"); else rapidfuzz's closest vocabulary word scoring
80 or more (typos: "iphnoe", "samsnug"). ``python -m benchmarks.stemmers``
measured the choice: 79/81 Hungarian and 28/28 English word forms right at
6.5 µs a word, against 56/81 and 204 MiB of dictionary for simplemma.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import Stemmer
from rapidfuzz import fuzz, process

_WORD_RE = re.compile(r"[^\W_]+")
_HUNGARIAN = Stemmer.Stemmer("hungarian")
_ENGLISH = Stemmer.Stemmer("english")
#: Shorter words match only exactly: "tv", "s9", "pro" are too short to guess at.
FUZZY_MIN = 4
FUZZY_CUTOFF = 80.0
_CACHE_LIMIT = 50_000


def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0xC0, 0x250):
        char = chr(code)
        base = "".join(
            c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c)
        )
        if base != char and len(base) == 1:
            table[code] = base.lower()
    return table


_FOLD = _fold_table()


def fold(text: str) -> str:
    """Lower case, accents removed: "Okosórát" -> "okosorat"."""
    lowered = text.lower()
    return lowered if lowered.isascii() else lowered.translate(_FOLD)


def tokens(text: str) -> list[str]:
    """Lower-case words; hyphens and punctuation split ("S24-nek" -> s24, nek)."""
    return _WORD_RE.findall(text.lower())


def has_accents(word: str) -> bool:
    return not word.isascii() and fold(word) != word


def stems(word: str) -> frozenset[str]:
    """The word's keys: its stems in both languages, as typed and without accents, folded."""
    folded = fold(word)
    found = {folded}
    for form in {word, folded}:
        found.add(fold(_HUNGARIAN.stemWord(form)))
        found.add(fold(_ENGLISH.stemWord(form)))
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a message, looked up once (a :class:`Lexicon` caches it)."""

    text: str
    folded: str
    #: The vocabulary words (folded) this word is a form of; empty when unknown.
    means: frozenset[str]
    #: Whether it matched by typo tolerance only.
    fuzzy: bool = False


class Lexicon:
    """A vocabulary, and what each word customers type means in it.

    Built once per shop; ``word()`` costs a dict look-up after a word's first sight.
    """

    def __init__(self, vocabulary: Iterable[str], *, fuzzy_exclude: Iterable[str] = ()) -> None:
        words = {fold(w) for w in vocabulary if w}
        # Stem key -> the vocabulary words that have it.
        self._by_stem: dict[str, set[str]] = {}
        for word in words:
            for key in stems(word):
                self._by_stem.setdefault(key, set()).add(word)
        # Vocabulary words long enough to be the start of a longer word, longest first.
        self._prefixes = sorted((w for w in words if len(w) >= FUZZY_MIN), key=len, reverse=True)
        # Candidates for typo tolerance (letters only: model numbers must be typed right).
        self._fuzzy = [w for w in words if len(w) >= FUZZY_MIN and w.isalpha()]
        # Words that are never read as typos of a vocabulary word (common small words).
        self._not_fuzzy = {fold(w) for w in fuzzy_exclude}
        # Text -> its Word; bounded, so odd input cannot grow it forever.
        self._seen: dict[str, Word] = {}

    def word(self, text: str) -> Word:
        """What ``text`` (one lower-case token) means in this vocabulary."""
        found = self._seen.get(text)
        if found is None:
            if len(self._seen) >= _CACHE_LIMIT:
                self._seen.clear()
            found = self._seen[text] = self._look_up(text)
        return found

    def _look_up(self, text: str) -> Word:
        folded = fold(text)
        means: set[str] = set()
        for key in stems(text):
            means |= self._by_stem.get(key, set())
        if means:
            return Word(text, folded, frozenset(means))
        if folded.isalpha():
            for prefix in self._prefixes:
                if folded.startswith(prefix) and len(folded) - len(prefix) <= 8:
                    return Word(text, folded, frozenset({prefix}))
        if len(folded) >= FUZZY_MIN and folded.isalpha() and folded not in self._not_fuzzy:
            best = process.extractOne(
                folded, self._fuzzy, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF
            )
            if best is not None:
                return Word(text, folded, frozenset({best[0]}), fuzzy=True)
        return Word(text, folded, frozenset())
