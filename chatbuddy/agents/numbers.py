"""Numbers in a message, told apart: e-mails, dates, money, quantities, order numbers.

Read in that order, each taking its text out of the way of the next, so
"2026-11-20" is a date and "50 ezer forint alatt" a budget before anything
could read either as an order number. Works on folded text (no accents).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: A number that starts a word: "s24" and "520bt" are names, not numbers to read.
_DIGIT_RE = re.compile(r"(?<![^\W_])\d")
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "januar january jan",
            "februar february feb",
            "marcius march mar",
            "aprilis april apr",
            "majus may",
            "junius june jun",
            "julius july jul",
            "augusztus august aug",
            "szeptember september sep sept",
            "oktober october oct okt",
            "november nov",
            "december dec",
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ISO_DATE_RE = re.compile(r"(?<!\d)(\d{4})\s*[-./]\s*(\d{1,2})\s*[-./]\s*(\d{1,2})(?!\d)\.?")
_NAMED_DATE_RE = re.compile(
    rf"\b(?:({_MONTH})\w*\.?\s*(\d{{1,2}})(?!\d)|(\d{{1,2}})(?:st|nd|rd|th|\.)?\s+(?:of\s+)?({_MONTH})\w*)"
)
_MONEY_RE = re.compile(
    r"(?<![\w.#-])(\d{1,3}(?:[ .,\u00a0\u202f]\d{3})+|\d+(?:[.,]\d+)?)"
    r"\s*(k|e|ezer|ezres|ezeret|eft|m|millio|million|mio)?(ig)?\b"
    r"\s*(ft|forint\w*|huf|,-)?"
)
_QUANTITY_RE = re.compile(r"(?<![\w.])(\d{1,3})\s*(?:db|darab\w*|pcs|pieces?|x)\b")
_NUMBER_RE = re.compile(r"(?<![\w@.])(#|ord-?|no\.?\s?)?(\d{4,8})(?![\w.,]?\d)(?=$|[^\w]|-)")
_MULTIPLIERS = {
    "k": 1000,
    "e": 1000,
    "ezer": 1000,
    "ezres": 1000,
    "ezeret": 1000,
    "eft": 1000,
    "m": 1_000_000,
    "millio": 1_000_000,
    "million": 1_000_000,
    "mio": 1_000_000,
}
_UNDER_RE = re.compile(
    r"(?:alatt\w*|ala\b|legfeljebb|maximum|max|kevesebb|under|below|less than|up to|within|budget)"
)
_OVER_RE = re.compile(r"(?:felett\w*|folott\w*|legalabb|minimum|over|above|more than|at least)")


@dataclass(frozen=True)
class Numbers:
    """What the numbers in a message are."""

    emails: tuple[str, ...] = ()
    #: ISO dates (year 0 when the customer gave none).
    dates: tuple[str, ...] = ()
    #: A budget: prices at most / at least this.
    max_price: int | None = None
    min_price: int | None = None
    quantities: tuple[int, ...] = ()
    #: 4-8 digit numbers that are none of the above, in order.
    order_numbers: tuple[str, ...] = ()
    #: Whether one was marked as an order number ("#10042", "ORD-10042").
    marked: bool = False
    #: Other bare numbers (1-3 digits): quantities, model numbers, ordinals.
    small: tuple[int, ...] = ()


def read_numbers(folded: str) -> Numbers:
    """The numbers in ``folded`` (a message, lower case, accents folded)."""
    if _DIGIT_RE.search(folded) is None and "@" not in folded:
        return Numbers()
    text = folded
    emails = tuple(m.group(0).strip(".") for m in _EMAIL_RE.finditer(text))
    text = _EMAIL_RE.sub(" ", text)
    dates: list[str] = []
    text = _ISO_DATE_RE.sub(lambda m: _date(dates, m.group(1), m.group(2), m.group(3)), text)
    text = _NAMED_DATE_RE.sub(lambda m: _named_date(dates, m), text)
    quantities = tuple(int(m.group(1)) for m in _QUANTITY_RE.finditer(text))
    text = _QUANTITY_RE.sub(" ", text)
    max_price = min_price = None
    money_spans: list[tuple[int, int]] = []
    for match in _MONEY_RE.finditer(text):
        amount, direction = _money(match, text)
        if amount is None:
            continue
        money_spans.append(match.span())
        if direction == "over":
            min_price = amount
        else:
            max_price = amount
    for start, end in reversed(money_spans):
        text = text[:start] + " " * (end - start) + text[end:]
    orders: list[str] = []
    marked = False
    for match in _NUMBER_RE.finditer(text):
        orders.append(match.group(2))
        marked = marked or bool(match.group(1))
    small = tuple(int(m) for m in re.findall(r"(?<![\w.])(\d{1,3})(?![\w.]?\d)", text))
    return Numbers(
        emails=emails,
        dates=tuple(dates),
        max_price=max_price,
        min_price=min_price,
        quantities=quantities,
        order_numbers=tuple(orders),
        marked=marked,
        small=small,
    )


def _date(dates: list[str], year: str, month: str, day: str) -> str:
    if 1 <= int(month) <= 12 and 1 <= int(day) <= 31:
        dates.append(f"{int(year):04d}-{int(month):02d}-{int(day):02d}")
    return " "


def _named_date(dates: list[str], match: re.Match[str]) -> str:
    month_name, day = (match.group(1), match.group(2)) if match.group(1) else match.group(4, 3)
    if not 1 <= int(day) <= 31:
        return match.group(0)
    dates.append(f"0000-{_MONTHS[month_name]:02d}-{int(day):02d}")
    return " "


def _money(match: re.Match[str], text: str) -> tuple[int | None, str | None]:
    """(amount, "under"/"over"/None) when the match is money; (None, None) when not."""
    digits, multiplier, until, currency = match.groups()
    before = text[max(0, match.start() - 24) : match.start()]
    after = text[match.end() : match.end() + 16]
    over = bool(_OVER_RE.search(before) or re.match(r"\s*(?:felett|folott|or more|\+)", after))
    under = bool(until) or bool(
        _UNDER_RE.search(before) or re.match(r"\s*(?:alatt|ala\b|or less|-ig)", after)
    )
    if not (multiplier or currency or over or under):
        return None, None
    compact = re.sub(r"[ .,\u00a0\u202f](?=\d{3}(?!\d))", "", digits).replace(",", ".")
    try:
        value = float(compact)
    except ValueError:
        return None, None
    amount = int(value * _MULTIPLIERS.get(multiplier or "", 1))
    if amount < 100 and not (multiplier or currency):
        return None, None  # "under 3" is not a budget
    return amount, "over" if over and not under else "under"
