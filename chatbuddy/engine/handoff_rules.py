"""The hand-off's decisions that every store makes the same way: who may hold a
conversation, when a hold ends, and under which agent a reaction is counted.

Pure functions of a session's record and the time; the stores keep their own
state and carry them out (the Redis store runs the same rules inside its Lua
scripts, where they must be atomic).
"""

from __future__ import annotations

from datetime import datetime

from chatbuddy.engine.store import OPERATOR_AGENT, HoldOutcome
from chatbuddy.records import Hold, SessionRecord


def take(record: SessionRecord, operator: str, *, now: datetime, until: datetime) -> HoldOutcome:
    """``operator`` takes ``record`` over until ``until``, or extends their hold; refused
    while another operator's hold is in force. Changes ``record`` when taken."""
    held = record.hold
    live = held is not None and held.live(now)
    if held is not None and live and held.operator != operator:
        return HoldOutcome(taken=False, hold=held)
    renewed = held is not None and live
    since = held.since if held is not None and renewed else now
    record.hold = Hold(operator=operator, since=since, until=until)
    record.waiting_since = None
    record.last_activity = now
    return HoldOutcome(taken=True, hold=record.hold, renewed=renewed)


def releasable(
    hold: Hold | None, operator: str | None, *, now: datetime, expired_only: bool
) -> bool:
    """Whether ``hold`` ends on this release: ``operator``'s (None: whoever's), and only
    once run out with ``expired_only``."""
    if hold is None or (operator is not None and hold.operator != operator):
        return False
    return not (expired_only and hold.live(now))


def counted_under(role: str, agent: str, route: str | None) -> tuple[str, str | None]:
    """The agent and route a reaction to a message of ``role`` is counted under: an
    operator's replies under OPERATOR_AGENT, the assistant's under its agent and route."""
    return (OPERATOR_AGENT, None) if role == "operator" else (agent, route)
