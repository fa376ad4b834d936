"""The collector policy: survivors are frozen out of every scan, garbage is not."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from chatbuddy.collector import CollectorPolicy


class Node:
    """Something that can sit in a reference cycle and be watched by a weakref."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """A two-object cycle nothing else refers to: only the collector can free it."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def policy() -> Iterator[CollectorPolicy]:
    policy = CollectorPolicy(every=3600)  # ticks by hand only
    yield policy
    gc.unfreeze()


def test_a_tick_freezes_what_is_alive_and_collects_young_garbage_first(
    policy: CollectorPolicy,
) -> None:
    alive = [Node() for _ in range(100)]
    dead = cycle()
    before = gc.get_freeze_count()
    policy.tick()
    assert dead() is None  # collected, not frozen
    assert gc.get_freeze_count() >= before + len(alive)


def test_frozen_objects_still_die_by_reference_counting(policy: CollectorPolicy) -> None:
    node = Node()
    watcher = weakref.ref(node)
    policy.tick()
    del node
    assert watcher() is None


def test_a_thaw_collects_cycles_that_formed_among_frozen_objects(policy: CollectorPolicy) -> None:
    a, b = Node(), Node()
    policy.tick()  # both frozen while alive
    a.other, b.other = b, a
    watcher = weakref.ref(a)
    del a, b  # now a cycle inside the permanent generation: no scan sees it
    gc.collect()
    assert watcher() is not None
    assert policy.thaw() >= 2
    assert watcher() is None
