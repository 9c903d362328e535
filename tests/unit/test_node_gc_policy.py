"""node.gc_policy: start-up's objects frozen, full collections spaced out, cycles still found."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from node.gc_policy import FULL_COLLECTION_EVERY, settle_after_startup


class _Cyclic:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.enable()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_startup_and_spaces_full_collections() -> None:
    young, middle, _ = gc.get_threshold()
    startup_object = _Cyclic()
    settle_after_startup()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (young, middle, FULL_COLLECTION_EVERY)
    assert all(startup_object is not o for o in gc.get_objects())  # frozen: never walked


@pytest.mark.usefixtures("restored_collector")
def test_cycles_made_after_settling_are_still_collected_automatically() -> None:
    settle_after_startup()
    garbage = _Cyclic()
    gone = weakref.ref(garbage)
    del garbage
    # Only the automatic young collections may find it: allocate containers
    # until one has run (each young pass moves survivors to the next generation).
    before = gc.get_stats()[0]["collections"]
    keep: list[list[int]] = []
    for _ in range(20 * gc.get_threshold()[0]):
        keep.append([0])
        if gc.get_stats()[0]["collections"] >= before + 2:
            break
    assert gone() is None
