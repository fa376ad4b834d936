"""Where the Redis engine keeps things (docs/redis.md lists the same layout).

Keys of one session share the hash tag ``{session_id}``, so the layout also
works on Redis Cluster (the global session index and node keys aside).
Channels are named by the bus (:class:`chatbuddy.engine.pubsub.PubSubBus`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix, so several deployments can share a Redis."""

    prefix: str

    def session(self, session_id: str) -> list[str]:
        """The session hash, its history (a sorted set by id), its dedup set, the
        leases of replies being produced (a hash: reply id -> until when, in ms), its
        internal notes (a list of JSON) and the customer's reactions (a hash:
        message id -> up/down). Every script gets all six, in this order."""
        tag = f"{self.prefix}{{{session_id}}}"
        return [
            f"{tag}:session",
            f"{tag}:history",
            f"{tag}:seen",
            f"{tag}:leases",
            f"{tag}:notes",
            f"{tag}:reactions",
        ]

    @property
    def holds(self) -> str:
        """Sessions an operator holds, scored by when the hold runs out (ms): where
        every node looks for holds to end (an index; the session hash decides)."""
        return f"{self.prefix}holds"

    @property
    def waiting(self) -> str:
        """Sessions whose customer asked for a person, scored by when (ms); an index."""
        return f"{self.prefix}waiting"

    @property
    def reactions(self) -> str:
        """Reaction totals of every session there was: ``agent\troute\tup|down`` -> count."""
        return f"{self.prefix}reactions"

    @property
    def index(self) -> str:
        """Sessions by last activity, for listing them most recent first."""
        return f"{self.prefix}sessions"

    @property
    def nodes(self) -> str:
        """The set of nodes that announced themselves."""
        return f"{self.prefix}nodes"

    def node(self, node_id: str) -> str:
        """One node's presence document; it expires when the node stops beating."""
        return f"{self.prefix}node:{node_id}"
