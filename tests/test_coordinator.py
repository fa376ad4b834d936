"""The coordinator: routes in Hungarian and English, answers from the demo shop, remembers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chatbuddy.agents import AgentRequest, make_agent
from chatbuddy.agents.coordinator import CoordinatorAgent
from chatbuddy.agents.numbers import read_numbers
from chatbuddy.agents.phrasing import article, date, price
from chatbuddy.agents.shop import Product, Shop
from chatbuddy.agents.words import fold
from chatbuddy.errors import ConfigurationError
from chatbuddy.records import StoredMessage, stored_message

SHOP = Shop.demo()


class Chat:
    """One conversation with the coordinator, its history kept as the store keeps it."""

    def __init__(
        self, agent: CoordinatorAgent | None = None, verified_user: str | None = None
    ) -> None:
        self.agent = agent or CoordinatorAgent(SHOP, words_per_chunk=3)
        self.history: list[StoredMessage] = []
        self.verified_user = verified_user

    async def ask(self, text: str) -> tuple[str, str, float, dict[str, Any]]:
        """(sub-agent, reply text, confidence, metadata)."""
        reply = await self.agent.respond(
            AgentRequest(
                "s", None, text, history=tuple(self.history), verified_user=self.verified_user
            )
        )
        assert reply.chunks is not None  # the coordinator streams
        content = "".join([chunk async for chunk in reply.chunks if isinstance(chunk, str)])
        now = datetime.now(UTC)
        self.history.append(
            stored_message(id=len(self.history) + 1, role="user", content=text, timestamp=now)
        )
        self.history.append(
            stored_message(
                id=len(self.history) + 1,
                role="assistant",
                content=content,
                timestamp=now,
                agent=reply.agent,
                metadata=reply.metadata,
            )
        )
        return reply.agent, content, reply.confidence, reply.metadata


async def ask(text: str) -> tuple[str, str, float, dict[str, Any]]:
    return await Chat().ask(text)


@pytest.mark.parametrize(
    ("text", "route"),
    [
        ("Van valami kedvezmény vagy kupon?", "marketing"),
        ("Do you have a discount coupon?", "marketing"),
        ("Mit ajánlasz, mi a legnépszerűbb laptop?", "recommendation"),
        ("Can you recommend something similar to the iPhone 15?", "recommendation"),
        ("Hol tart a rendelésem szállítása?", "order"),
        ("Where is my order? I need the tracking number", "order"),
        ("Mennyi az ára a Samsung Galaxy S24-nek?", "product"),
        ("Van készleten Xiaomi Redmi Note 13?", "product"),
        ("What is the price of the Nintendo Switch OLED?", "product"),
        ("Szia!", "general"),
        ("Hello there", "general"),
        ("Mennyi a szállítási díj?", "general"),
    ],
)
async def test_messages_are_routed_in_both_languages(text: str, route: str) -> None:
    agent, _, _, _ = await ask(text)
    assert agent == route


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Mennyi az ára?", "hu"),
        ("Szia, hol tart a rendelésem?", "hu"),
        ("Koszonom", "hu"),
        ("van kedvezmeny?", "hu"),
        ("Xiaomi telefon?", "hu"),
        ("How much is it?", "en"),
        ("Where is my order?", "en"),
    ],
)
async def test_the_reply_is_in_the_language_of_the_message_even_without_accents(
    text: str, language: str
) -> None:
    _, _, _, metadata = await ask(text)
    assert metadata["language"] == language


async def test_a_message_that_shows_no_language_keeps_the_conversations() -> None:
    chat = Chat()
    await chat.ask("How much is the GoPro?")
    _, text, _, metadata = await chat.ask("PS5")
    assert metadata["language"] == "en"
    assert "219,990 HUF" in text


@pytest.mark.parametrize("product", SHOP.products, ids=lambda p: p.id)
async def test_asking_the_price_of_any_catalogue_product_returns_that_price(
    product: Product,
) -> None:
    agent, hu, confidence, metadata = await ask(f"Mennyi az ára a {product.name} terméknek?")
    assert agent == "product"
    assert metadata["product_id"] == product.id
    assert price(product.price, "hu") in hu
    assert confidence >= 0.9
    _, en, _, _ = await ask(f"How much does the {product.name} cost?")
    assert price(product.price, "en") in en


@pytest.mark.parametrize(
    ("text", "product_id"),
    [
        ("mennyi a ps5", "p26"),
        ("MacBook Air?", "p07"),
        ("airpods ara", "p16"),
        ("xbox", "p28"),
        ("iphnoe 15 pro", "p04"),
        ("how much is the sony wh1000xm5", "p15"),
        ("mennyibe van a zenbok", "p09"),
    ],
)
async def test_aliases_partial_names_model_numbers_and_typos_find_the_product(
    text: str, product_id: str
) -> None:
    _, _, _, metadata = await ask(text)
    assert metadata["product_id"] == product_id


async def test_an_ambiguous_name_asks_which_one_and_the_answer_picks_it() -> None:
    chat = Chat()
    _, text, _, metadata = await chat.ask("mennyi az iphone?")
    assert text.startswith("Melyikre gondol:")
    assert metadata["choices"] == ["p03", "p04"]
    _, text, _, metadata = await chat.ask("a pro")
    assert metadata["product_id"] == "p04"


async def test_follow_ups_are_about_the_product_talked_about() -> None:
    chat = Chat()
    await chat.ask("Mennyibe kerül az iPhone 15?")
    _, stock, _, _ = await chat.ask("Van belőle készleten?")
    assert "9 db" in stock
    _, _, _, metadata = await chat.ask("És a Pro változat?")
    assert metadata["product_id"] == "p04"
    _, _, _, metadata = await chat.ask("Ajánlj hasonlót!")
    assert {SHOP.product(p).category for p in metadata["recommended"]} == {"phone"}  # type: ignore[union-attr]


async def test_the_longest_matching_product_name_wins() -> None:
    _, _, _, pro = await ask("How much is the iPhone 15 Pro?")
    _, _, _, plain = await ask("How much is the iPhone 15?")
    assert (pro["product_id"], plain["product_id"]) == ("p04", "p03")


async def test_an_out_of_stock_product_says_so() -> None:
    _, text, _, _ = await ask("Van készleten Google Pixel 8?")
    assert "nincs készleten" in text


async def test_a_budget_is_a_filter_not_an_order_number() -> None:
    agent, text, _, _ = await ask("Van 50000 Ft alatti telefonotok?")
    assert agent == "product"
    assert "#50000" not in text
    assert "Xiaomi Redmi Note 13" in text  # the cheapest, offered instead


async def test_brand_and_category_narrow_a_list() -> None:
    _, text, _, _ = await ask("Samsung tévé")
    assert "Samsung QE55Q80C" in text
    assert "LG" not in text


async def test_a_comparison_shows_price_stock_and_rating_side_by_side() -> None:
    _, text, _, metadata = await ask("which is better, the S24 or the iPhone 15?")
    assert metadata["compared"] == ["p01", "p03"]
    for fact in ("349,990 HUF", "399,990 HUF", "4.7", "4.8", "14 in stock", "9 in stock"):
        assert fact in text


async def test_recommendations_are_similar_in_stock_products() -> None:
    _, text, _, metadata = await ask("Ajánlj valami hasonlót a Sony WH-1000XM5 helyett")
    recommended = metadata["recommended"]
    assert recommended
    for product_id in recommended:
        product = SHOP.product(product_id)
        assert product is not None
        assert product.category == "headphones"
        assert product.stock > 0
        assert product.name in text


async def test_marketing_lists_the_active_coupons_with_their_dates() -> None:
    _, text, _, _ = await ask("Milyen kuponok vannak?")
    for coupon in SHOP.coupons:
        assert coupon.code in text
    assert "november 30." in text


@pytest.mark.parametrize("policy", SHOP.policies, ids=lambda p: p.topic)
async def test_policy_answers_are_the_shops_own_texts(policy: Any) -> None:
    _, text, _, metadata = await ask(f"{policy.keywords.hu[0]}?")
    assert policy.topic in metadata["topics"]
    assert policy.hu in text


async def test_thanks_and_goodbye_are_not_answered_with_a_greeting() -> None:
    _, text, _, _ = await ask("köszi, viszlát")
    assert text.startswith("Szívesen!")
    assert "Üdvözlöm" not in text


async def test_asking_for_a_person_acknowledges_and_requests_a_handoff() -> None:
    agent = CoordinatorAgent(SHOP)
    reply = await agent.respond(AgentRequest("s", None, "beszélhetnék egy emberrel?"))
    assert reply.handoff == "customer_asked"
    assert reply.metadata["handoff_requested"] is True


async def test_a_vague_message_has_low_confidence_and_a_matched_one_high() -> None:
    _, _, vague, _ = await ask("hmm")
    _, _, exact, _ = await ask("Mennyi az ára az Apple iPad Air-nek?")
    assert vague < 0.5 < 0.9 <= exact


async def test_replies_stream_in_several_chunks() -> None:
    agent = CoordinatorAgent(SHOP, words_per_chunk=2)
    reply = await agent.respond(AgentRequest("s", None, "What coupons do you have?"))
    assert reply.chunks is not None
    chunks = [chunk async for chunk in reply.chunks]
    assert len(chunks) > 3


def test_numbers_are_told_apart() -> None:
    def read(text: str) -> Any:
        return read_numbers(fold(text))

    assert read("50 ezer forint alatt").max_price == 50_000
    assert read("under 100k").max_price == 100_000
    assert read("tvs over 300k").min_price == 300_000
    assert read("I ordered on 2026-11-20").dates == ("2026-11-20",)
    assert read("I ordered on 2026-11-20").order_numbers == ()
    assert read("2 db airpods").quantities == (2,)
    assert read("#10042, ORD-10043 and 10044.").order_numbers == ("10042", "10043", "10044")
    assert read("WH-1000XM5").order_numbers == ()
    assert read("10041-es, kovacs.anna@example.com").emails == ("kovacs.anna@example.com",)


def test_hungarian_reads_as_a_person_writes_it() -> None:
    assert price(349990, "hu") == "349\u202f990\u202fFt"
    assert price(349990, "en") == "349,990 HUF"
    assert date("2026-11-27", "hu") == "november 27."
    assert date("2026-11-27", "en") == "November 27"
    assert [article(w) for w in ("iPhone", "Samsung", "Apple", "#10042", "1", "5", "1000")] == [
        "az",
        "a",
        "az",
        "a",
        "az",
        "az",
        "az",
    ]


async def test_no_reply_uses_the_a_z_template() -> None:
    for text in ("Mennyi az ára az Apple iPhone 15-nek?", "mennyi a samsung galaxy s24?"):
        _, reply, _, _ = await ask(text)
        assert "A(z)" not in reply


def test_an_unknown_agent_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="'gpt'"):
        make_agent("gpt")


def test_an_agent_can_be_named_as_module_and_factory() -> None:
    agent = make_agent("tests.plugins:make_agent")
    assert agent.name == "plugged-in"
    with pytest.raises(ConfigurationError, match="cannot import"):
        make_agent("no_such_module:factory")
    with pytest.raises(ConfigurationError, match="no callable"):
        make_agent("tests.plugins:nothing_here")
