"""The collector policy of a serving process (``csms.collector``), with the real ``gc``.

Each test leaves the interpreter as it found it: nothing frozen, the thresholds restored.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from csms import collector


class Node:
    """A weak-referenceable object that can sit in a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(b)


def tracked(obj: object) -> bool:
    """True while ``obj`` is in a generation the collector walks (not frozen)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.collect()


def test_tick_freezes_the_survivors() -> None:
    node, _ = cycle()
    assert tracked(node)
    collector.HeapFreezer(1.0, 3600.0).tick()
    assert not tracked(node)
    assert gc.get_freeze_count() > 0


def test_a_frozen_object_is_still_freed_by_reference_counting() -> None:
    node = Node()
    ref = weakref.ref(node)
    collector.HeapFreezer(1.0, 3600.0).tick()
    del node
    assert ref() is None


def test_the_full_collection_frees_a_cycle_that_died_frozen() -> None:
    freezer = collector.HeapFreezer(1.0, 3600.0)
    node, ref = cycle()
    freezer.tick()
    del node
    gc.collect()  # the interpreter's own collections never look at frozen objects
    assert ref() is not None
    with capture_logs() as events:
        unreachable = freezer.full_collection()
    assert ref() is None
    assert unreachable >= 2
    assert gc.get_freeze_count() > 0  # frozen again afterwards
    (event,) = [e for e in events if e["event"] == "gc.full_collection"]
    assert event["unreachable"] == unreachable
    assert event["pause_ms"] >= 0


def test_tick_runs_the_full_collection_when_it_is_due() -> None:
    freezer = collector.HeapFreezer(1.0, 0.0)
    node, ref = cycle()
    gc.freeze()
    del node
    freezer.tick()
    assert freezer.full_collections == 1
    assert ref() is None


def test_tune_for_serving_freezes_start_up_and_raises_the_young_threshold() -> None:
    node = Node()
    collector.tune_for_serving()
    assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD
    assert not tracked(node)


def test_gc_tune_0_leaves_the_interpreter_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSMS_GC_TUNE", "0")
    before = gc.get_threshold()
    collector.tune_for_serving()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_the_freezer_task_freezes_on_its_interval() -> None:
    task = collector.start_freezer(0.01, 3600.0)
    assert task is not None
    try:
        node = Node()
        for _ in range(100):
            if not tracked(node):
                break
            await asyncio.sleep(0.01)
        assert not tracked(node)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_no_freezer_at_interval_0_or_with_gc_tune_0(monkeypatch: pytest.MonkeyPatch) -> None:
    assert collector.start_freezer(0.0, 3600.0) is None
    monkeypatch.setenv("CSMS_GC_TUNE", "0")
    assert collector.start_freezer(1.0, 3600.0) is None
