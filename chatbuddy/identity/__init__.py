"""Customers' signed identities (JWT): who a customer is, proven by the shop's site."""

from chatbuddy.identity.verify import Identities, Identity

__all__ = ["Identities", "Identity"]
