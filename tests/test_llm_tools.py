"""The llm agent's tools on their own: the shop's data in, JSON out, the ownership rule kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chatbuddy.agents.base import AgentRequest
from chatbuddy.agents.context import Context
from chatbuddy.agents.coordinator import CoordinatorAgent
from chatbuddy.agents.llm.tools import TOOLS, ShopTools, tool_schemas
from chatbuddy.agents.ownership import WRONG_PROOFS_ALLOWED
from chatbuddy.agents.shop import FileOrders, Shop
from chatbuddy.agents.understanding import Reader
from chatbuddy.errors import AgentFailed
from chatbuddy.records import stored_message

SHOP = Shop.demo()
READER = Reader(SHOP)
#: Order 10042 of the demo shop, and what proves it is yours.
ORDER, OWNER_EMAIL, OWNER_POSTCODE = "10042", "nagy.peter@example.com", "6720"


def tools(context: Context | None = None, verified_user: str | None = None) -> ShopTools:
    return ShopTools(
        SHOP,
        FileOrders(SHOP.orders),
        READER,
        context=context or Context(),
        verified_user=verified_user,
    )


async def run(shop_tools: ShopTools, name: str, **arguments: Any) -> tuple[dict[str, Any], bool]:
    text, finished = await shop_tools.run(name, json.dumps(arguments))
    assert finished.tool == name
    return json.loads(text), finished.ok


def test_every_tools_schema_is_its_pydantic_models_with_the_shops_words() -> None:
    schemas = {s["function"]["name"]: s["function"] for s in tool_schemas(SHOP)}
    assert list(schemas) == [t.name for t in TOOLS]
    for tool in TOOLS:
        assert schemas[tool.name]["parameters"] == tool.arguments.model_json_schema()
    assert "phone" in schemas["search_products"]["description"]
    assert "shipping" in schemas["shop_policy"]["description"]


async def test_search_finds_a_product_by_the_customers_words_with_prices_from_the_catalogue() -> (
    None
):
    found, ok = await run(tools(), "search_products", text="galaxy s24")
    assert ok
    [product] = found["products"]
    expected = next(p for p in SHOP.products if p.name == "Samsung Galaxy S24")
    assert (product["id"], product["price"], product["stock"]) == (
        expected.id,
        expected.price,
        expected.stock,
    )


async def test_search_filters_and_orders_like_the_offline_assistants_queries() -> None:
    found, _ = await run(
        tools(), "search_products", category="phone", max_price=300_000, order="price"
    )
    prices = [p["price"] for p in found["products"]]
    assert prices == sorted(prices)
    assert all(p <= 300_000 for p in prices)
    assert all(p["category"] == "phone" for p in found["products"])


async def test_an_unknown_category_is_an_answer_that_lists_the_real_ones() -> None:
    found, ok = await run(tools(), "search_products", category="spaceships")
    assert not ok
    assert found["categories"] == list(SHOP.categories)


async def test_an_order_needs_a_proof_and_says_nothing_of_it_before() -> None:
    found, ok = await run(tools(), "order_status", order_number=ORDER)
    assert (found["status"], ok) == ("proof_needed", True)
    assert "shipped" not in json.dumps(found)


async def test_the_right_postcode_shows_the_order_from_the_shops_data() -> None:
    shop_tools = tools()
    found, ok = await run(shop_tools, "order_status", order_number=ORDER, postcode=OWNER_POSTCODE)
    order = next(o for o in SHOP.orders if o.id == ORDER)
    assert ok
    assert (found["status"], found["tracking"], found["eta"]) == (
        order.status,
        order.tracking,
        order.eta,
    )
    assert ORDER in shop_tools.context.owned


async def test_a_verified_owner_needs_no_proof() -> None:
    order = next(o for o in SHOP.orders if o.customer is not None)
    who = tools(verified_user=order.customer)
    found, ok = await run(who, "order_status", order_number=order.id)
    assert (found["status"], ok) == (order.status, True)


async def test_a_missing_order_and_a_wrong_proof_get_the_same_answer() -> None:
    missing, _ = await run(tools(), "order_status", order_number="99999", email=OWNER_EMAIL)
    wrong, _ = await run(tools(), "order_status", order_number=ORDER, email="x@example.com")
    del missing["order_number"], wrong["order_number"]
    assert (
        missing
        == wrong
        == {
            "status": "proof_wrong",
            "tries_left": WRONG_PROOFS_ALLOWED - 1,
            "say": wrong["say"],
        }
    )


async def test_wrong_proofs_lock_the_conversation_even_against_the_right_one() -> None:
    shop_tools = tools()
    for _ in range(WRONG_PROOFS_ALLOWED):
        await run(shop_tools, "order_status", order_number=ORDER, email="guess@example.com")
    found, ok = await run(shop_tools, "order_status", order_number=ORDER, email=OWNER_EMAIL)
    assert (found["status"], ok) == ("locked", False)
    assert shop_tools.context.wrong_proofs == WRONG_PROOFS_ALLOWED


async def test_the_budget_is_shared_with_the_offline_assistant_both_ways() -> None:
    """Wrong proofs given to one agent count for the other: switching (a fallback)
    does not buy a fresh budget."""
    spent = Context(wrong_proofs=WRONG_PROOFS_ALLOWED - 1)
    shop_tools = tools(spent)
    found, _ = await run(shop_tools, "order_status", order_number=ORDER, postcode="0000")
    assert found["status"] == "locked"
    now = datetime.now(UTC)
    history = [
        stored_message(id=1, role="user", content="10042, 0000", timestamp=now),
        stored_message(
            id=2,
            role="assistant",
            content="Locked.",
            timestamp=now,
            in_reply_to=1,
            metadata={"context": shop_tools.context.to_metadata()},
        ),
    ]
    coordinator = CoordinatorAgent(SHOP)
    reply = await coordinator.respond(
        AgentRequest("s1", None, f"10042 {OWNER_EMAIL}", history=history)
    )
    assert reply.metadata.get("proof") == "locked"


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("drop_tables", "{}"),
        ("order_status", '{"order_number": "12"}'),
        ("order_status", '{"order_number": "10042", "admin": true}'),
        ("get_product", "not json"),
        ("search_products", '{"text": "' + "x" * 3000 + '"}'),
    ],
)
async def test_a_call_outside_a_tools_schema_is_refused(name: str, arguments: str) -> None:
    with pytest.raises(AgentFailed) as refused:
        await tools().run(name, arguments)
    assert refused.value.retryable


async def test_handoff_asks_for_a_person_and_gives_the_shops_contact() -> None:
    shop_tools = tools()
    found, ok = await run(shop_tools, "handoff_to_human", reason="customer_asked")
    assert ok
    assert shop_tools.handoff == "customer_asked"
    contact = next(p for p in SHOP.policies if p.topic == "contact")
    assert found["contact"] == {"hu": contact.hu, "en": contact.en}
