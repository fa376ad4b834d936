"""Which language a customer writes in: Hungarian or English."""

from __future__ import annotations

from typing import Literal

Language = Literal["hu", "en"]

_HUNGARIAN_LETTERS = frozenset("áéíóöőúüű")
_HUNGARIAN_WORDS = frozenset(
    """
    szia sziasztok helló jó napot kérem köszönöm mennyi mennyibe az egy van vannak nincs
    hol mikor mi mit milyen melyik hogy és vagy nem igen szeretnék kérek tudna tudnál lenne
    rendelésem rendelés termék ára ár készleten raktáron valami olcsó drága ajánlj ajánlana
    kupon akció hírlevél
    """.split()
)
_ENGLISH_WORDS = frozenset(
    """
    hi hello hey the is are what which how much does do my i you me can could would please
    thanks thank price cost stock order where when any have has recommend similar discount
    coupon newsletter delivery tracking status for with of
    """.split()
)


def detect_language(tokens: list[str]) -> Language:
    """Hungarian when its letters or words outweigh English words; else English."""
    hungarian = sum(w in _HUNGARIAN_WORDS for w in tokens)
    hungarian += 2 * sum(any(ch in _HUNGARIAN_LETTERS for ch in w) for w in tokens)
    english = sum(w in _ENGLISH_WORDS for w in tokens)
    return "hu" if hungarian > english else "en"
