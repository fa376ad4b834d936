"""Who may see an order: the one rule every agent follows (issue 10, item 9).

An order's details (status, carrier, tracking number, delivery date, items)
go only to a session that proves it owns the order: the order number plus the
e-mail address or the postcode on the order, or a verified identity whose
subject is the order's ``customer`` (``AgentRequest.verified_user``; set by the
server once signed tokens carry a subject). A ``user_id`` in the URL is a
label, never a proof.

Wrong proofs count against a budget of :data:`WRONG_PROOFS_ALLOWED` per
session. When it runs out, the session gets no order details any more, even
with the right proof, and is sent to customer service; a new session starts
a new budget, so the per-IP and per-session rate limits bound guessing. The
assistant never says whether an order number exists before the proof matches.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatbuddy.agents.shop import Order

#: Wrong e-mails or postcodes a session may give before it gets no order details.
WRONG_PROOFS_ALLOWED = 3


def owns(
    order: Order | None,
    *,
    emails: Sequence[str] = (),
    postcodes: Sequence[str] = (),
    verified_user: str | None = None,
) -> bool:
    """Whether the proofs show the order is the customer's (False for no order)."""
    if order is None:
        return False
    if verified_user is not None and verified_user == order.customer:
        return True
    if any(e.strip().lower() == order.email.strip().lower() for e in emails):
        return True
    return order.postcode in postcodes


def proofs_left(wrong_proofs: int) -> int:
    return max(0, WRONG_PROOFS_ALLOWED - wrong_proofs)
