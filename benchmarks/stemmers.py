"""Which stemmer or lemmatiser the shop assistant uses: measured, not guessed.

    python -m benchmarks.stemmers

Each candidate turns a word into a key (its stem or lemma, accents folded;
the word as typed and the word without accents both give a key). A word form
is right when its keys meet the keys of the vocabulary word it is a form of,
and of no other vocabulary word. The forms are the ones customers type:
suffixed, plural, possessive, without accents. Speed is microseconds per
word over the whole list, the best of five passes.
"""

from __future__ import annotations

import functools
import resource
import time
import unicodedata
from collections.abc import Callable

#: Vocabulary word -> forms customers type (each must resolve to that word only).
HUNGARIAN: dict[str, tuple[str, ...]] = {
    "okosóra": ("okosórát", "okosórákat", "okosorat", "okosórák", "okosorak", "okosórája"),
    "kamera": ("kamerát", "kamerat", "kamerák", "kamerája", "kamerakat"),
    "telefon": ("telefonotok", "telefont", "telefonok", "telefonja", "telefonokat", "telefonod"),
    "fülhallgató": ("fülhallgatót", "fulhallgatot", "fülhallgatók", "fulhallgatok"),
    "fejhallgató": ("fejhallgatót", "fejhallgatot", "fejhallgatók"),
    "kedvezmény": ("kedvezmeny", "kedvezményt", "kedvezmenyek", "kedvezményeket"),
    "rendelés": ("rendelésem", "rendelesem", "rendelést", "rendelesemet", "rendelésemről"),
    "szállítás": ("szállítási", "szallitas", "szállítást", "szallitasi", "szállításról"),
    "tévé": ("tévét", "teve", "tévék", "téviket"),
    "laptop": ("laptopot", "laptopok", "laptopokat", "laptopja"),
    "konzol": ("konzolt", "konzolok", "konzolokat"),
    "garancia": ("garanciát", "garanciat", "garanciája", "garanciaja", "garanciális"),
    "visszaküldés": ("visszaküldést", "visszakuldes", "visszaküldésről"),
    "fizetés": ("fizetést", "fizetes", "fizetési", "fizetesi"),
    "készlet": ("készleten", "keszleten", "készletről", "keszlet"),
    "kupon": ("kuponok", "kupont", "kuponkód", "kuponokat"),
    "ajánlat": ("ajánlatot", "ajanlatot", "ajánlatok"),
    "tablet": ("tabletet", "tabletek", "tabletot"),
    "számla": ("számlát", "szamlat", "számlám"),
    "futár": ("futárt", "futar", "futárral"),
}
ENGLISH: dict[str, tuple[str, ...]] = {
    "phone": ("phones",),
    "laptop": ("laptops",),
    "headphone": ("headphones",),
    "watch": ("watches",),
    "camera": ("cameras",),
    "console": ("consoles",),
    "recommend": ("recommended", "recommendation", "recommends"),
    "deliver": ("delivered", "delivery", "delivering"),
    "return": ("returns", "returned", "returning"),
    "refund": ("refunds", "refunded"),
    "payment": ("payments",),
    "order": ("orders", "ordered", "ordering"),
    "coupon": ("coupons",),
    "ship": ("shipping", "shipped", "ships"),
    "cancel": ("cancelled", "canceling", "cancellation"),
}


def fold(text: str) -> str:
    """Lower case without accents: "Okosórát" -> "okosorat"."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


Resolver = Callable[[str], set[str]]
#: Builds a resolver for one language's vocabulary: form -> the vocabulary words it is a form of.
Candidate = Callable[[str, list[str]], Resolver]


def by_keys(keyer: Callable[[str], set[str]]) -> Candidate:
    """Right when the form's keys meet a vocabulary word's keys."""

    def build(lang: str, vocabulary: list[str]) -> Resolver:
        keys = {word: keyer(word) for word in vocabulary}

        def resolve(form: str) -> set[str]:
            mine = keyer(form)
            return {w for w, k in keys.items() if k & mine}

        return resolve

    return build


def stem_keys(stemmer: Callable[[str, str], str]) -> Callable[[str], Callable[[str], set[str]]]:
    def for_lang(lang: str) -> Callable[[str], set[str]]:
        return lambda word: {fold(stemmer(lang, word)), fold(stemmer(lang, fold(word)))}

    return for_lang


def candidates() -> dict[str, Candidate]:
    """Name -> how it builds a resolver (imports happen on first use, so loading is measured)."""

    @functools.cache
    def pystemmer_for(lang: str) -> Callable[[str], str]:
        import Stemmer

        return Stemmer.Stemmer({"hu": "hungarian", "en": "english"}[lang]).stemWord  # type: ignore[no-any-return]

    @functools.cache
    def snowball_for(lang: str) -> Callable[[str], str]:
        import snowballstemmer

        return snowballstemmer.stemmer({"hu": "hungarian", "en": "english"}[lang]).stemWord  # type: ignore[no-any-return]

    def pystemmer(lang: str, word: str) -> str:
        return pystemmer_for(lang)(word)

    def snowball(lang: str, word: str) -> str:
        return snowball_for(lang)(word)

    def lemma(lang: str, word: str) -> str:
        import simplemma

        return str(simplemma.lemmatize(word, lang=lang))

    def keyed(stemmer: Callable[[str, str], str]) -> Candidate:
        def build(lang: str, vocabulary: list[str]) -> Resolver:
            keyer = stem_keys(stemmer)(lang)
            return by_keys(keyer)(lang, vocabulary)

        return build

    def keyed_union(
        first: Callable[[str, str], str], second: Callable[[str, str], str]
    ) -> Candidate:
        def build(lang: str, vocabulary: list[str]) -> Resolver:
            one, two = stem_keys(first)(lang), stem_keys(second)(lang)
            return by_keys(lambda word: one(word) | two(word))(lang, vocabulary)

        return build

    def stem_then_fuzzy(lang: str, vocabulary: list[str]) -> Resolver:
        """PyStemmer keys; else a stem that starts with a vocabulary stem (4+ letters);
        else rapidfuzz's closest vocabulary word at 80 or more."""
        import Stemmer
        from rapidfuzz import fuzz, process

        stem = Stemmer.Stemmer({"hu": "hungarian", "en": "english"}[lang]).stemWord
        keyer = stem_keys(lambda _, w: stem(w))(lang)
        exact = by_keys(keyer)(lang, vocabulary)
        stems = {word: fold(stem(word)) for word in vocabulary}
        folded = {fold(word): word for word in vocabulary}

        def resolve(form: str) -> set[str]:
            found = exact(form)
            if found:
                return found
            mine = fold(stem(fold(form)))
            found = {w for w, s in stems.items() if len(s) >= 4 and mine.startswith(s)}
            if found:
                return found
            best = process.extractOne(fold(form), list(folded), scorer=fuzz.ratio, score_cutoff=80)
            return {folded[best[0]]} if best else set()

        return resolve

    return {
        "snowballstemmer": keyed(snowball),
        "PyStemmer": keyed(pystemmer),
        "PyStemmer + stem prefix + rapidfuzz": stem_then_fuzzy,
        "simplemma": keyed(lemma),
        "simplemma + PyStemmer": keyed_union(lemma, pystemmer),
    }


def accuracy(resolve: Resolver, vocabulary: dict[str, tuple[str, ...]]) -> tuple[int, int]:
    """(right, total) over every form of ``vocabulary``."""
    right = total = 0
    for word, forms in vocabulary.items():
        for form in forms:
            total += 1
            right += resolve(form) == {word}
    return right, total


def speed(resolve: Resolver, words: list[str]) -> float:
    """Microseconds per word, best of five passes."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for word in words:
            resolve(word)
        best = min(best, time.perf_counter() - started)
    return best / len(words) * 1e6


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Print one row per candidate: accuracy per language, speed, loading cost.

    Candidates run in the order listed, so a later one's memory is its growth
    over the ones before (peak resident memory only grows).
    """
    hu_words = [f for forms in HUNGARIAN.values() for f in forms]
    print(
        f"{'candidate':38} {'hu right':>9} {'en right':>9} {'µs/word':>8} {'load s':>7} {'+MiB':>6}"
    )
    for name, build in candidates().items():
        before, started = rss_mib(), time.perf_counter()
        hu, en = build("hu", list(HUNGARIAN)), build("en", list(ENGLISH))
        hu(hu_words[0]), en("phones")
        load = time.perf_counter() - started
        grown = rss_mib() - before
        hu_right, hu_total = accuracy(hu, HUNGARIAN)
        en_right, en_total = accuracy(en, ENGLISH)
        micro = speed(hu, hu_words)
        print(
            f"{name:38} {hu_right:>3}/{hu_total:<5} {en_right:>3}/{en_total:<5} "
            f"{micro:>8.1f} {load:>7.2f} {grown:>6.0f}"
        )


if __name__ == "__main__":
    main()
