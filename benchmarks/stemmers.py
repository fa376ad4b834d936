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


Keyer = Callable[[str], set[str]]


def candidates() -> dict[str, tuple[Keyer, Keyer]]:
    """Name -> (Hungarian keyer, English keyer)."""
    import simplemma
    import snowballstemmer
    import Stemmer

    sb_hu, sb_en = snowballstemmer.stemmer("hungarian"), snowballstemmer.stemmer("english")
    py_hu, py_en = Stemmer.Stemmer("hungarian"), Stemmer.Stemmer("english")

    def keys(stem: Callable[[str], str]) -> Keyer:
        return lambda word: {fold(stem(word)), fold(stem(fold(word)))}

    def lemma(lang: str) -> Keyer:
        return keys(lambda word: simplemma.lemmatize(word, lang=lang))

    def both(first: Keyer, second: Keyer) -> Keyer:
        return lambda word: first(word) | second(word)

    return {
        "snowballstemmer": (keys(sb_hu.stemWord), keys(sb_en.stemWord)),
        "PyStemmer": (keys(py_hu.stemWord), keys(py_en.stemWord)),
        "simplemma": (lemma("hu"), lemma("en")),
        "simplemma + PyStemmer": (
            both(lemma("hu"), keys(py_hu.stemWord)),
            both(lemma("en"), keys(py_en.stemWord)),
        ),
    }


def accuracy(keyer: Keyer, vocabulary: dict[str, tuple[str, ...]]) -> tuple[int, int]:
    """(right, total) over every form of ``vocabulary``."""
    vocab_keys = {word: keyer(word) for word in vocabulary}
    right = total = 0
    for word, forms in vocabulary.items():
        for form in forms:
            total += 1
            found = keyer(form)
            hits = {w for w, k in vocab_keys.items() if k & found}
            right += hits == {word}
    return right, total


def speed(keyer: Keyer, words: list[str]) -> float:
    """Microseconds per word, best of five passes."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for word in words:
            keyer(word)
        best = min(best, time.perf_counter() - started)
    return best / len(words) * 1e6


def main() -> None:
    hu_words = [f for forms in HUNGARIAN.values() for f in forms]
    print(f"{'candidate':24} {'hu right':>10} {'en right':>10} {'µs/word':>8}")
    for name, (hu, en) in candidates().items():
        hu_right, hu_total = accuracy(hu, HUNGARIAN)
        en_right, en_total = accuracy(en, ENGLISH)
        micro = speed(hu, hu_words)
        print(
            f"{name:24} {hu_right:>4}/{hu_total:<5} {en_right:>4}/{en_total:<5} {micro:>8.2f}"
        )


if __name__ == "__main__":
    main()
