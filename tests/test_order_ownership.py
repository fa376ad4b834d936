"""Order details go only to a session that proves it owns the order (issue 10, item 9)."""

from __future__ import annotations

import pytest

from chatbuddy.agents import make_agent
from chatbuddy.agents.coordinator import CoordinatorAgent
from chatbuddy.agents.ownership import WRONG_PROOFS_ALLOWED
from chatbuddy.agents.shop import Order, Shop
from chatbuddy.settings import Settings
from tests.conftest import ADMIN_TOKEN, Connect
from tests.test_coordinator import Chat

SHOP = Shop.demo()


def secrets_of(order: Order) -> list[str]:
    """What must not reach anyone who has not proven they own ``order``."""
    facts = [order.tracking, order.carrier, "úton van", "kézbesítve", "feldolgozás alatt"]
    facts += ["has been shipped", "has been delivered", "being processed", "was cancelled"]
    return [f for f in facts if f]


@pytest.fixture
def settings() -> Settings:
    """No rate limit: guessing is what these tests do."""
    return Settings(port=0, admin_token=ADMIN_TOKEN, rate_limit=0)


@pytest.mark.parametrize("order", SHOP.orders, ids=lambda o: o.id)
async def test_an_order_number_alone_gives_no_order_details(order: Order) -> None:
    _, text, _, metadata = await Chat().ask(f"Hol tart a {order.id} számú rendelésem?")
    assert f"#{order.id}" in text
    assert "e-mail" in text
    assert metadata["proof"] == "asked"
    for secret in secrets_of(order):
        assert secret not in text


async def test_the_order_number_then_its_email_gives_the_details() -> None:
    chat = Chat()
    await chat.ask("Hol a rendelésem?")
    _, asked, _, _ = await chat.ask("10042")
    assert "GLS" not in asked
    _, text, _, metadata = await chat.ask("Nagy.Peter@example.com")
    assert "GLS-7781-2201" in text
    assert "november 27." in text
    assert metadata["found"] is True
    _, again, _, _ = await chat.ask("és mikor érkezik?")
    assert "november 27." in again  # proven once, for the rest of the session


async def test_the_postcode_on_the_order_proves_it_too() -> None:
    chat = Chat()
    await chat.ask("where is my order 10045?")
    _, text, _, _ = await chat.ask("7621")
    assert "MPL-5520-9134" in text


async def test_a_proof_in_the_same_message_is_enough() -> None:
    _, text, _, _ = await Chat().ask("A 10041-es rendelésem hol tart? kovacs.anna@example.com")
    assert "feldolgozás alatt" in text


async def test_an_unknown_order_number_is_answered_like_a_wrong_proof() -> None:
    unknown, known = Chat(), Chat()
    for chat, number in ((unknown, "99999"), (known, "10042")):
        await chat.ask(f"order {number}")
    _, for_unknown, _, _ = await unknown.ask("someone@example.com")
    _, for_known, _, _ = await known.ask("someone@example.com")
    assert for_unknown.replace("99999", "N") == for_known.replace("10042", "N")


async def test_wrong_proofs_count_against_a_budget_then_no_details_are_given() -> None:
    chat = Chat()
    await chat.ask("hol tart a 10043 rendelésem")
    for attempt in range(WRONG_PROOFS_ALLOWED):
        _, text, _, metadata = await chat.ask(f"{1000 + attempt}")
        assert metadata["context"]["wrong_proofs"] == attempt + 1
    assert "ügyfélszolgálat" in text
    _, text, _, metadata = await chat.ask("szabo.eva@example.com")  # the right proof, too late
    assert metadata["proof"] == "locked"
    for secret in ("kézbesítve", "november 5."):
        assert secret not in text


async def test_a_verified_identity_that_owns_the_order_needs_no_other_proof() -> None:
    _, text, _, _ = await Chat(verified_user="anna").ask("hol tart a 10041 rendelésem?")
    assert "feldolgozás alatt" in text
    _, text, _, _ = await Chat(verified_user="mallory").ask("hol tart a 10041 rendelésem?")
    assert "feldolgozás alatt" not in text


async def test_a_user_id_in_the_url_is_no_proof(connect: Connect) -> None:
    client = await connect("labelled", user_id="anna")  # anna owns 10041, but says so only
    await client.greeting()
    reply = await client.chat("labelled", "hol tart a 10041 rendelésem?")
    assert "feldolgozás alatt" not in reply["content"]
    assert "e-mail" in reply["content"]


async def test_guessing_order_numbers_on_a_running_server_yields_no_order_details(
    connect: Connect,
) -> None:
    """The attack measured in issue 10: try numbers until orders come out."""
    client = await connect("guesser")
    await client.greeting()
    seen = []
    for number in range(10038, 10050):
        seen.append((await client.chat("guesser", f"order {number} status?"))["content"])
        seen.append((await client.chat("guesser", f"{number}"))["content"])
    replies = "\n".join(seen)
    for order in SHOP.orders:
        for secret in secrets_of(order):
            assert secret not in replies


async def test_an_order_backend_can_be_plugged_in_as_module_and_factory() -> None:
    agent = make_agent("coordinator", order_backend="tests.plugins:make_orders")
    assert isinstance(agent, CoordinatorAgent)
    chat = Chat(agent)
    _, text, _, _ = await chat.ask("where is my order 77001? remote@example.com")
    assert "DPD-0000-7700" in text
    _, text, _, _ = await Chat(agent).ask("where is my order 10042? nagy.peter@example.com")
    assert "GLS" not in text  # the file's orders are not asked any more
