"""How the assistant writes: prices, dates, articles, stock, in Hungarian and English.

Hungarian as people write it: the article chosen for the word ("a telefon",
"az iPhone"), dates as "november 27.", prices with a narrow no-break space
(U+202F) between thousands and before "Ft", ratings with a decimal comma.
"""

from __future__ import annotations

from chatbuddy.agents.shop import Product
from chatbuddy.agents.shopfile import Language

#: Between thousands and before the currency in Hungarian prices.
NNBSP = "\u202f"

_MONTHS = {
    "hu": (
        "január február március április május június július augusztus "
        "szeptember október november december"
    ).split(),
    "en": (
        "January February March April May June July August September October November December"
    ).split(),
}
_VOWELS = frozenset("aáeéiíoóöőuúüűAÁEÉIÍOÓÖŐUÚÜŰ")


def price(amount: int, lang: Language, currency: str = "HUF") -> str:
    """349990 -> "349 990 Ft" (U+202F, hu) or "349,990 HUF" (en)."""
    if lang == "hu":
        unit = "Ft" if currency == "HUF" else currency
        return f"{amount:,}".replace(",", NNBSP) + NNBSP + unit
    return f"{amount:,} {currency}"


def date(iso: str, lang: Language) -> str:
    """ "2026-11-27" -> "november 27." (hu) or "November 27" (en); the year is left out."""
    month, day = int(iso[5:7]), int(iso[8:10])
    name = _MONTHS[lang][month - 1]
    return f"{name} {day}." if lang == "hu" else f"{name} {day}"


def rating(value: float, lang: Language) -> str:
    text = f"{value:.1f}"
    return text.replace(".", ",") if lang == "hu" else text


def article(word: str) -> str:
    """The Hungarian definite article for ``word``: "az" before a vowel sound, else "a".

    Numbers are read out: "az 1", "az 5", "az 1000" (egy, öt, ezer), "a 10042" (tízezer).
    """
    text = word.lstrip("#")
    if not text:
        return "a"
    if text[0].isdigit():
        digits = len(text) - len(text.lstrip("0123456789"))
        lead = text[0]
        return "az" if lead == "5" or (lead == "1" and digits in (1, 4)) else "a"
    return "az" if text[0] in _VOWELS else "a"


def the(word: str) -> str:
    """``word`` with its article, capitalised: "Az iPhone 15", "A Samsung Galaxy S24"."""
    return f"{article(word).capitalize()} {word}"


def stock(product: Product, lang: Language) -> str:
    if product.stock == 0:
        return "jelenleg nincs készleten" if lang == "hu" else "currently out of stock"
    if lang == "hu":
        return f"készleten: {product.stock} db"
    return f"{product.stock} in stock"


def line(product: Product, lang: Language, currency: str) -> str:
    """One product in a list: name, price, stock."""
    return f"• {product.name} — {price(product.price, lang, currency)} ({stock(product, lang)})"


def listing(products: list[Product], lang: Language, currency: str) -> str:
    return "\n".join(line(p, lang, currency) for p in products)


def choice(names: list[str], lang: Language) -> str:
    """ "A, B vagy C" / "A, B or C"."""
    if len(names) == 1:
        return names[0]
    joiner = " vagy " if lang == "hu" else " or "
    return ", ".join(names[:-1]) + joiner + names[-1]
