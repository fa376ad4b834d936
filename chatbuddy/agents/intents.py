"""What a customer may want, and the words that say it, in Hungarian and English.

These are recognition words, not answers: what the assistant says comes from
the shop file and the templates in :mod:`chatbuddy.agents.phrasing`. Words
are base forms; :mod:`chatbuddy.agents.words` matches their inflected, accent-less
and misspelt forms. A phrase (``PHRASES``) matches when all its words occur.
"""

from __future__ import annotations

from enum import StrEnum


class Intent(StrEnum):
    PRICE = "price"
    STOCK = "stock"
    ORDER = "order"
    TRACK = "track"
    RECOMMEND = "recommend"
    SIMILAR = "similar"
    COMPARE = "compare"
    CHEAP = "cheap"
    CHEAPER = "cheaper"
    CHEAPEST = "cheapest"
    EXPENSIVE = "expensive"
    PRICIEST = "priciest"
    WHEN = "when"
    UNDER = "under"
    OVER = "over"
    ONLY = "only"
    MARKETING = "marketing"
    VALIDITY = "validity"
    THANKS = "thanks"
    BYE = "bye"
    GREETING = "greeting"
    HUMAN = "human"
    ENGLISH = "english"
    HUNGARIAN = "hungarian"
    LIST = "list"
    VARIANT = "variant"


#: Intent -> (Hungarian words, English words).
INTENT_WORDS: dict[Intent, tuple[str, str]] = {
    Intent.PRICE: ("ár ára mennyi mennyibe kerül költ", "price cost pricing"),
    Intent.STOCK: (
        "készlet készleten raktár raktáron kapható elérhető",
        "stock available availability",
    ),
    Intent.ORDER: (
        "rendelés rendel rendeltem rendelésem csomag csomagom futár szállítmány "
        "követés nyomkövetés státusz",
        "order ordered parcel package tracking track status shipment",
    ),
    Intent.TRACK: ("státusz nyomkövetés követési", "status tracking"),
    Intent.RECOMMEND: (
        "ajánl ajánlj ajánlasz ajánlanál javasol javasolj jó",
        "recommend suggest good",
    ),
    Intent.SIMILAR: (
        "hasonló helyette alternatíva más egyéb",
        "similar instead alternative else other",
    ),
    Intent.COMPARE: (
        "jobb összehasonlít különbség vagy versus",
        "better compare comparison difference versus vs or",
    ),
    Intent.CHEAP: ("olcsó olcsón", "cheap budget affordable"),
    Intent.CHEAPER: ("olcsóbb olcsóbbat", "cheaper"),
    Intent.CHEAPEST: ("legolcsóbb legolcsóbbat", "cheapest"),
    Intent.EXPENSIVE: ("drága drágább", "expensive pricier"),
    Intent.PRICIEST: ("legdrágább legdrágábbat", "priciest"),
    Intent.WHEN: ("mikor", "when"),
    Intent.UNDER: (
        "alatt alatti alá legfeljebb maximum kevesebb max",
        "under below less within max maximum",
    ),
    Intent.OVER: ("felett feletti fölött legalább minimum", "over above more least minimum"),
    Intent.ONLY: ("csak kizárólag", "only just"),
    Intent.MARKETING: (
        "kedvezmény kupon kuponkód akció akciós leárazás engedmény promóció",
        "discount coupon code voucher sale deal promo offer",
    ),
    Intent.VALIDITY: ("meddig érvényes lejár", "valid until expire expires"),
    Intent.THANKS: ("köszönöm köszi kösz köszönet köszönjük", "thanks thank thx cheers"),
    Intent.BYE: ("viszlát viszontlátásra", "bye goodbye"),
    Intent.GREETING: (
        "szia sziasztok helló üdv üdvözlöm szervusz",
        "hi hello hey morning",
    ),
    Intent.HUMAN: (
        "ember emberrel ügyintéző kolléga operátor munkatárs élő ügyfélszolgálatos",
        "human person agent operator representative",
    ),
    Intent.ENGLISH: ("angolul", "english"),
    Intent.HUNGARIAN: ("magyarul", "hungarian"),
    Intent.LIST: ("milyen mit árultok árul kínálat van vannak", "what which sell selling have"),
    Intent.VARIANT: ("változat verzió modell", "version variant model"),
}

#: Words too common to carry meaning, or to be read as a typo of a vocabulary word.
STOP_WORDS: tuple[str, str] = (
    "a az egy és is van vannak nincs hol mi mit milyen melyik hogy vagy nem igen kérem "
    "szeretnék keresek kérek tudtok tudna tudnátok lenne akkor még meg de ha ez ezt azt "
    "vmi valami valamit nektek nálatok ti te ön én nekem engem miért hány "
    "lesz lehet kell kellene most már csak ami amit aki ezek azok abból belőle itt ott "
    "tudom tudok szeretném szeretnék vásárolni venni keresni nézni jöhet jön érkezik",
    "the a an is are was what which how much many do does did i you me my mine it its can "
    "could would will please for of to in on at and or with any have has had this that "
    "there here ok okay want need looking get buy some something about your yours we us "
    "be been why who whom whose am im",
)

#: Phrases whose words mean something only together.
PHRASES: dict[str, Intent] = {
    "how much": Intent.PRICE,
    "where is my": Intent.ORDER,
    "hol tart": Intent.TRACK,
    "hol jár": Intent.TRACK,
    "hol van": Intent.TRACK,
    "where is": Intent.TRACK,
    "see you": Intent.BYE,
    "jó napot": Intent.GREETING,
    "what else": Intent.SIMILAR,
    "in stock": Intent.STOCK,
    "most expensive": Intent.PRICIEST,
    "talk to someone": Intent.HUMAN,
}
