"""How a running node's cyclic garbage collector is set: rarely over the long-lived heap.

Why: under load a validator holds some 190,000 container objects that live for
seconds or minutes (the mempool's and execution's caches, the core's window of
recent requests, the state tree's node cache, and what start-up loaded). A full
collection walks all of them. At CPython's default thresholds one ran every
8-10 s at 1,000 attests/s, took 97-114 ms of CPU, held the GIL (so the event
loop stood still) as long, and found nothing: those objects are freed by
reference counting. Four of them were 2.7 % of a node's CPU over a 20 s run
(docs/performance.md, "The garbage collector, and msgpack's packer").

So once start-up is over:

- ``gc.freeze()`` takes what start-up made (modules, classes, functions, the
  genesis) out of every later collection;
- a full collection waits for ``FULL_COLLECTION_EVERY`` collections of the
  middle generation instead of 10: about every 90 s at that load, where the
  probe counted some 1.1 middle-generation passes a second.

The young generations keep their thresholds: they find the short-lived
cycles. A larger generation-0 threshold was measured too; it made
generation-1 passes of 30 ms and saved nothing.
"""

from __future__ import annotations

import gc
from typing import Final

FULL_COLLECTION_EVERY: Final = 100
"""Middle-generation collections between two full ones (CPython's default: 10)."""


def settle_after_startup() -> None:
    """Collect start-up's garbage, freeze what remains, space out full collections."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
