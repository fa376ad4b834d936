"""The coordinator: routes in Hungarian and English, answers from the demo shop."""

from __future__ import annotations

import pytest

from chatbuddy.agents import AgentRequest, make_agent
from chatbuddy.agents.coordinator import CoordinatorAgent
from chatbuddy.agents.language import detect_language
from chatbuddy.agents.shop import Shop, order_numbers, words
from chatbuddy.errors import ConfigurationError

SHOP = Shop.demo()


async def ask(text: str) -> tuple[str, str, float, dict[str, object]]:
    agent = CoordinatorAgent(SHOP, words_per_chunk=3)
    reply = await agent.respond(AgentRequest(session_id="s", user_id=None, content=text))
    assert reply.chunks is not None  # the coordinator streams
    content = "".join([chunk async for chunk in reply.chunks])
    return reply.agent, content, reply.confidence, reply.metadata


@pytest.mark.parametrize(
    ("text", "route"),
    [
        ("Van valami kedvezmény vagy kupon?", "marketing"),
        ("Feliratkoznék a hírlevélre", "marketing"),
        ("Do you have a discount coupon?", "marketing"),
        ("Mit ajánlasz, mi a legnépszerűbb?", "recommendation"),
        ("Can you recommend something similar to the iPhone 15?", "recommendation"),
        ("Hol tart a rendelésem szállítása?", "order"),
        ("Where is my order? I need the tracking number", "order"),
        ("Mennyi az ára a Samsung Galaxy S24-nek?", "product"),
        ("Van készleten Xiaomi Redmi Note 13?", "product"),
        ("What is the price of the Nintendo Switch OLED?", "product"),
        ("Szia!", "general"),
        ("Hello there", "general"),
    ],
)
async def test_messages_are_routed_by_keywords_in_both_languages(text: str, route: str) -> None:
    agent, _, _, _ = await ask(text)
    assert agent == route


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Mennyi az ára?", "hu"),
        ("Szia, hol tart a rendelésem?", "hu"),
        ("How much is it?", "en"),
        ("Where is my order?", "en"),
    ],
)
def test_the_language_is_detected(text: str, language: str) -> None:
    assert detect_language(words(text)) == language


@pytest.mark.parametrize("product", SHOP.products, ids=lambda p: p.id)
async def test_asking_the_price_of_any_catalogue_product_returns_that_price(
    product: object,
) -> None:
    from chatbuddy.agents.answers import price
    from chatbuddy.agents.shop import Product

    assert isinstance(product, Product)
    agent, hu, confidence, metadata = await ask(f"Mennyi az ára a {product.name} terméknek?")
    assert agent == "product"
    assert metadata["product_id"] == product.id
    assert price(product.price, "hu") in hu
    assert confidence >= 0.9
    _, en, _, _ = await ask(f"How much does the {product.name} cost?")
    assert price(product.price, "en") in en


async def test_the_longest_matching_product_name_wins() -> None:
    _, _, _, pro = await ask("How much is the iPhone 15 Pro?")
    _, _, _, plain = await ask("How much is the iPhone 15?")
    assert (pro["product_id"], plain["product_id"]) == ("p04", "p03")


async def test_an_out_of_stock_product_says_so() -> None:
    _, text, _, _ = await ask("Van készleten Google Pixel 8?")
    assert "nincs készleten" in text


async def test_an_order_number_returns_that_orders_status() -> None:
    agent, hu, confidence, metadata = await ask("Hol tart a 10042 számú rendelésem?")
    assert agent == "order"
    assert metadata == {"language": "hu", "order_id": "10042", "found": True}
    assert "úton van" in hu
    assert "GLS-7781-2201" in hu
    assert confidence >= 0.9
    _, en, _, _ = await ask("What is the status of order #10043?")
    assert "has been delivered" in en


async def test_an_unknown_order_says_it_is_not_found() -> None:
    agent, text, confidence, metadata = await ask("Where is my order 99999?")
    assert agent == "order"
    assert metadata["found"] is False
    assert "can't find" in text
    assert "99999" in text
    assert confidence < 0.9


async def test_an_order_question_without_a_number_asks_for_it() -> None:
    _, text, confidence, _ = await ask("Hol tart a rendelésem?")
    assert "rendelésszámot" in text
    assert confidence < 0.9


async def test_recommendations_are_similar_in_stock_products() -> None:
    _, text, _, metadata = await ask("Ajánlj valami hasonlót a Sony WH-1000XM5 helyett")
    recommended = metadata["recommended"]
    assert isinstance(recommended, list)
    assert recommended
    for product_id in recommended:
        product = SHOP.product(product_id)
        assert product is not None
        assert product.category == "headphones"
        assert product.stock > 0
        assert product.name in text


async def test_marketing_lists_the_active_coupons() -> None:
    _, text, _, _ = await ask("Milyen kuponok vannak?")
    for coupon in SHOP.coupons:
        assert coupon.code in text


async def test_a_category_question_lists_that_category() -> None:
    _, text, _, metadata = await ask("What laptops do you sell?")
    listed = metadata["listed"]
    assert isinstance(listed, list)
    assert {SHOP.product(p).category for p in listed} == {"laptop"}  # type: ignore[union-attr]
    assert "Lenovo ThinkPad E14" in text


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


def test_order_numbers_are_found_in_their_usual_spellings() -> None:
    assert order_numbers("#10042, ORD-10043 and 10044.") == ["10042", "10043", "10044"]
    assert order_numbers("iPhone 15 for 399990") == ["399990"]
    assert order_numbers("WH-1000XM5") == []


def test_an_unknown_agent_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="'gpt'"):
        make_agent("gpt")
